/**
 * @module http/handlers/redeliver-job-webhook
 * `POST /jobs/{id}/deliveries/{delivery_id}/redeliver`: queue a message again, same `webhook-id`.
 */
import { AppError } from '../../errors.ts';
import type { ApiDeps } from '../deps.ts';
import { deliveryView } from '../delivery-view.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';
import { findJob } from './get-job.ts';

export function redeliverJobWebhookHandler(deps: ApiDeps): OperationHandler<'redeliverJobWebhook'> {
  return async (c, _req, res) => {
    const job = await findJob(deps, c.request.params.id, res);
    const message = await deps.webhooks.redeliver(job.id, c.request.params.delivery_id);
    if (!message) {
      throw new AppError('delivery_not_found', `The job ${job.id} has no delivery ${c.request.params.delivery_id}.`);
    }
    deps.logger.info('webhook redelivery asked', { job_id: job.id, webhook_id: message.id });
    sendJson(res, 'redeliverJobWebhook', 202, deliveryView(message));
  };
}
