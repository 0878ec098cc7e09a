/**
 * @module http/handlers/get-job
 * `GET /jobs/{id}`, and the lookup every operation on one job starts with.
 */
import type { Response } from 'express';

import { AppError } from '../../errors.ts';
import type { JobRow } from '../../jobs/job-store.ts';
import { canSee } from '../api-keys.ts';
import { jobView } from '../../jobs/job-view.ts';
import type { ApiDeps } from '../deps.ts';
import { jobWebhookView } from '../delivery-view.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

/**
 * The job, if the caller may see it. A job of another API key is answered exactly like one that does not exist,
 * so ids cannot be probed. The owner of a job never changes, so a check here holds for what the caller does next.
 */
export async function findJob(deps: ApiDeps, id: string, res: Response): Promise<JobRow> {
  const row = await deps.store.get(id);
  if (!row || !canSee(res.locals.caller, row.submitted_by)) {
    throw new AppError('job_not_found', `No job has the id ${id}.`);
  }
  return row;
}

export function getJobHandler(deps: ApiDeps): OperationHandler<'getJob'> {
  return async (c, _req, res) => {
    const job = await findJob(deps, c.request.params.id, res);
    const view = jobView(job, { queuePosition: await deps.store.queuePosition(job) }, deps.clock.now());
    const webhook = await deps.webhooks.jobWebhook(view.id);
    if (webhook) {
      view.webhook = jobWebhookView(webhook.webhook, webhook.last);
    }
    sendJson(res, 'getJob', 200, view);
  };
}
