/**
 * @module http/handlers/get-job-result
 * `GET /jobs/{id}/result`: renders the stored transcript in the format asked for, by `format=` or by `Accept`.
 */
import type { Request } from 'express';

import type { ResultFormat } from '../../domain.ts';
import { AppError } from '../../errors.ts';
import { DEFAULT_SUBTITLE_OPTIONS, renderTranscript } from '../../transcripts/render-transcript.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { findJob } from './get-job.ts';

/** The media type each format is negotiated by; `verbose_json` is only reachable by `format=`. */
const NEGOTIABLE: Record<string, ResultFormat> = {
  'text/plain': 'txt',
  'application/json': 'json',
  'application/x-subrip': 'srt',
  'text/vtt': 'vtt',
};

/** `format=` wins; then the client's preferred type among ours; no `Accept` means plain text. */
function chooseFormat(req: Request, asked: ResultFormat | undefined): ResultFormat {
  if (asked !== undefined) {
    return asked;
  }
  if (req.headers.accept === undefined || req.headers.accept.trim() === '') {
    return 'txt';
  }
  const best = req.accepts(Object.keys(NEGOTIABLE));
  const format = typeof best === 'string' ? NEGOTIABLE[best] : undefined;
  if (format === undefined) {
    throw new AppError('not_acceptable', `None of the types in Accept can be produced; use one of ${Object.keys(NEGOTIABLE).join(', ')}, or format=.`);
  }
  return format;
}

export function getJobResultHandler(deps: ApiDeps): OperationHandler<'getJobResult'> {
  return async (c, req, res) => {
    const job = await findJob(deps, c.request.params.id);
    const format = chooseFormat(req, c.request.query.format);
    if (job.status !== 'completed') {
      throw new AppError('job_not_completed', `The job is ${job.status}; its transcript exists once it is completed.`);
    }
    const transcript = await deps.store.transcript(job.id);
    if (!transcript) {
      throw new AppError('internal_error', 'The transcript of this completed job is missing.');
    }
    const rendered = renderTranscript(
      transcript,
      format,
      { jobId: job.id, model: job.model, task: job.task },
      {
        maxLineWidth: c.request.query.max_line_width ?? DEFAULT_SUBTITLE_OPTIONS.maxLineWidth,
        maxLinesPerCue: c.request.query.max_lines_per_cue ?? DEFAULT_SUBTITLE_OPTIONS.maxLinesPerCue,
      },
    );
    res.setHeader('Content-Disposition', `attachment; filename="${job.id}.${rendered.extension}"`);
    res.setHeader('Vary', 'Accept');
    res.status(200).type(rendered.contentType).send(rendered.body);
  };
}
