/**
 * @module http/handlers/cancel-job
 * `POST /jobs/{id}/cancel`: marks the job canceled first, which fences off a worker still running it, then
 * stops that worker (its ffmpeg and pool task end, the slot is freed) and deletes the files; the record stays.
 */
import { AppError } from '../../errors.ts';
import { removeJobFiles } from '../../jobs/job-files.ts';
import { jobView } from '../../jobs/job-view.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';
import { findJob } from './get-job.ts';

export function cancelJobHandler(deps: ApiDeps): OperationHandler<'cancelJob'> {
  return async (c, _req, res) => {
    const { id } = c.request.params;
    await findJob(deps, id, res);
    const outcome = await deps.store.cancel(id, deps.clock.now());
    if (!outcome) {
      throw new AppError('job_not_found', `No job has the id ${id}.`);
    }
    if (!outcome.canceled) {
      throw new AppError('job_finished', `The job is already ${outcome.before.status}; only pending or running jobs can be canceled.`);
    }
    // A job running in another process notices at its next heartbeat, when it finds its lease gone.
    const stopped = deps.dispatcher.abortJob(id);
    // The answer does not wait for a storage that is down: the orphan sweep removes the upload later.
    await removeJobFiles(deps.dataDir, deps.blobs, id).catch((error: unknown) => deps.logger.warn('removing the job\'s files failed; the orphan sweep retries', { job_id: id, error }));
    deps.logger.info('job canceled', { job_id: id, was: outcome.before.status, worker_stopped: stopped });
    const job = await deps.store.get(id);
    if (!job) {
      // Deleted between the two statements: as far as the client can tell, it never existed.
      throw new AppError('job_not_found', `No job has the id ${id}.`);
    }
    sendJson(res, 'cancelJob', 200, jobView(job));
  };
}
