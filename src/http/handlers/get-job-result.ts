/**
 * @module http/handlers/get-job-result
 * `GET /jobs/{id}/result`: renders the stored transcript in the format asked for.
 */
import { AppError } from '../../errors.ts';
import { renderTranscript } from '../../transcription/transcript.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { findJob } from './get-job.ts';

export function getJobResultHandler(deps: ApiDeps): OperationHandler<'getJobResult'> {
  return async (c, _req, res) => {
    const job = await findJob(deps, c.request.params.id);
    if (job.status !== 'completed') {
      throw new AppError('job_not_completed', `The job is ${job.status}; its transcript exists once it is completed.`);
    }
    const transcript = await deps.store.transcript(job.id);
    if (!transcript) {
      throw new AppError('internal_error', 'The transcript of this completed job is missing.');
    }
    const format = c.request.query.format ?? 'txt';
    const rendered = renderTranscript(transcript, format, { jobId: job.id, model: job.model, task: job.task });
    res.setHeader('Content-Disposition', `attachment; filename="${job.id}.${rendered.extension}"`);
    res.status(200).type(rendered.contentType).send(rendered.body);
  };
}
