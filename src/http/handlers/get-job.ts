/**
 * @module http/handlers/get-job
 * `GET /jobs/{id}`.
 */
import { AppError } from '../../errors.ts';
import type { JobRow } from '../../jobs/job-store.ts';
import { jobView } from '../../jobs/job-view.ts';
import type { ApiDeps } from '../deps.ts';
import { jobWebhookView } from '../delivery-view.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export async function findJob(deps: ApiDeps, id: string): Promise<JobRow> {
  const row = await deps.store.get(id);
  if (!row) {
    throw new AppError('job_not_found', `No job has the id ${id}.`);
  }
  return row;
}

export function getJobHandler(deps: ApiDeps): OperationHandler<'getJob'> {
  return async (c, _req, res) => {
    const job = await findJob(deps, c.request.params.id);
    const view = jobView(job, { queuePosition: await deps.store.queuePosition(job) }, deps.clock.now());
    const webhook = await deps.webhooks.jobWebhook(view.id);
    if (webhook) {
      view.webhook = jobWebhookView(webhook.webhook, webhook.last);
    }
    sendJson(res, 'getJob', 200, view);
  };
}
