/**
 * @module http/handlers/list-job-deliveries
 * `GET /jobs/{id}/deliveries`: every webhook message of the job with its attempts.
 */
import type { ApiDeps } from '../deps.ts';
import { deliveryView } from '../delivery-view.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';
import { findJob } from './get-job.ts';

export function listJobDeliveriesHandler(deps: ApiDeps): OperationHandler<'listJobDeliveries'> {
  return async (c, _req, res) => {
    const job = await findJob(deps, c.request.params.id, res);
    const deliveries = await deps.webhooks.deliveries(job.id);
    sendJson(res, 'listJobDeliveries', 200, { deliveries: deliveries.map(({ message, attempts }) => deliveryView(message, attempts)) });
  };
}
