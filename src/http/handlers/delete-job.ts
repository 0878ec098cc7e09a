/**
 * @module http/handlers/delete-job
 * `DELETE /jobs/{id}`: removes the record first, so a worker still running the job is fenced off and its
 * result dropped, then stops that worker and deletes the files.
 */
import { AppError } from '../../errors.ts';
import { removeJobFiles } from '../../jobs/job-files.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';

export function deleteJobHandler(deps: ApiDeps): OperationHandler<'deleteJob'> {
  return async (c, _req, res) => {
    const { id } = c.request.params;
    const removed = await deps.store.remove(id);
    if (!removed) {
      throw new AppError('job_not_found', `No job has the id ${id}.`);
    }
    deps.dispatcher.abortJob(id);
    await removeJobFiles(deps.dataDir, id);
    deps.logger.info('job deleted', { job_id: id, status: removed.status });
    res.status(204).end();
  };
}
