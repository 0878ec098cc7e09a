/**
 * @module webhooks/webhook-events
 * The events a job can post, and which ones a submission asked for.
 */
import { listOf } from '../domain.ts';
import type { WebhookEvent } from '../domain.ts';

export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEvent[] = ['completed', 'failed', 'canceled'];
const ALL: readonly WebhookEvent[] = listOf<WebhookEvent>()(['processing', 'completed', 'failed', 'canceled']);

export function isWebhookEvent(value: string): value is WebhookEvent {
  return (ALL as readonly string[]).includes(value);
}

/** `webhook_events` of a submission (already checked against the spec's pattern); the default when absent. */
export function parseWebhookEvents(field: string | undefined): WebhookEvent[] {
  if (field === undefined) {
    return [...DEFAULT_WEBHOOK_EVENTS];
  }
  return ALL.filter((event) => field.split(',').includes(event));
}
