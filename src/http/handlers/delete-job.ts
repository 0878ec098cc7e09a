/**
 * @module http/handlers/delete-job
 * `DELETE /jobs/{id}`: removes the record first, so a worker still running the job is fenced off and its
 * result dropped, then stops that worker and deletes the files.
 */
import { AppError } from '../../errors.ts';
import { removeJobFiles } from '../../jobs/job-files.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { findJob } from './get-job.ts';

export function deleteJobHandler(deps: ApiDeps): OperationHandler<'deleteJob'> {
  return async (c, _req, res) => {
    const { id } = c.request.params;
    await findJob(deps, id, res);
    const removed = await deps.store.remove(id);
    if (!removed) {
      throw new AppError('job_not_found', `No job has the id ${id}.`);
    }
    deps.dispatcher.abortJob(id);
    // The answer does not wait for a storage that is down: the orphan sweep removes the upload later.
    await removeJobFiles(deps.dataDir, deps.blobs, id).catch((error: unknown) => deps.logger.warn('removing the job\'s files failed; the orphan sweep retries', { job_id: id, error }));
    deps.logger.info('job deleted', { job_id: id, status: removed.status });
    res.status(204).end();
  };
}
