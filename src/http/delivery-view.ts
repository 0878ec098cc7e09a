/**
 * @module http/delivery-view
 * The API's view of webhook messages and of a job's webhook.
 */
import type { AttemptRow, JobWebhookRow, MessageRow } from '../webhooks/outbox.ts';
import { isWebhookEvent } from '../webhooks/webhook-events.ts';
import type { Schemas } from './operation-types.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

export function deliveryView(message: MessageRow, attempts?: readonly AttemptRow[]): Schemas['Delivery'] {
  const view: Schemas['Delivery'] = {
    id: message.id,
    event: message.event,
    url: message.url,
    status: message.status,
    attempts: message.attempts,
    last_status_code: message.last_status_code,
    next_attempt_at: message.status === 'pending' && message.next_attempt_at !== null ? iso(message.next_attempt_at) : null,
    created_at: iso(message.created_at),
    updated_at: iso(message.updated_at),
  };
  if (attempts !== undefined) {
    view.attempt_log = attempts.map((attempt) => ({
      attempt: attempt.attempt,
      started_at: iso(attempt.started_at),
      status_code: attempt.status_code,
      error: attempt.error,
      duration_ms: attempt.duration_ms,
    }));
  }
  return view;
}

export function jobWebhookView(webhook: JobWebhookRow, last: MessageRow | undefined): Schemas['JobWebhook'] {
  return {
    url: webhook.url,
    events: webhook.events.split(',').filter(isWebhookEvent),
    last_delivery: last ? deliveryView(last) : null,
  };
}
