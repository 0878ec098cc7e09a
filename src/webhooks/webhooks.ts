/**
 * @module webhooks/webhooks
 * Job webhooks as the rest of the service sees them: the job store records a job's URL with the job itself, then
 * the outbox and its deliverer do the rest. Dispatcher events only wake the deliverer early; the outbox sweep
 * decides what is owed.
 */
import type { EventEmitter } from 'node:events';

import type { Clock } from '../clock.ts';
import type { WebhookEvent } from '../domain.ts';
import { AppError } from '../errors.ts';
import type { Database } from '../jobs/database.ts';
import type { DispatcherEvents } from '../jobs/dispatcher.ts';
import { jobView } from '../jobs/job-view.ts';
import type { Logger } from '../logger.ts';
import { createDeliverer } from './deliverer.ts';
import type { Deliverer } from './deliverer.ts';
import { createOutbox } from './outbox.ts';
import type { AttemptRow, JobWebhookRow, MessageRow, Outbox } from './outbox.ts';
import type { WebhookTarget } from './webhook-target.ts';

export interface WebhookSettings {
  defaultUrl: string | null;
  secrets: readonly string[];
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  timeoutMs: number;
  pollIntervalMs?: number;
}

export interface Webhooks {
  readonly defaultUrl: string | null;
  /** At submission: the URL must pass the policy, and the server must be able to sign. */
  checkUrl(url: string): Promise<void>;
  jobWebhook(jobId: string): Promise<{ webhook: JobWebhookRow; last: MessageRow | undefined } | null>;
  deliveries(jobId: string): Promise<{ message: MessageRow; attempts: AttemptRow[] }[]>;
  redeliver(jobId: string, messageId: string): Promise<MessageRow | undefined>;
  start(events: EventEmitter<DispatcherEvents>): Promise<void>;
  stop(): Promise<void>;
}

export function createWebhooks(options: { db: Database; target: WebhookTarget; clock: Clock; logger: Logger; settings: WebhookSettings }): Webhooks {
  const { target, clock, logger, settings } = options;
  const outbox: Outbox = createOutbox(options.db);
  const payload = (job: Parameters<typeof jobView>[0], event: WebhookEvent): string =>
    JSON.stringify({ type: `job.${event}`, timestamp: new Date(job.updated_at).toISOString(), data: jobView(job) });
  const deliverer: Deliverer = createDeliverer({
    outbox,
    target,
    secrets: settings.secrets,
    clock,
    logger,
    retryBaseMs: settings.retryBaseMs,
    retryMaxMs: settings.retryMaxMs,
    maxAttempts: settings.maxAttempts,
    timeoutMs: settings.timeoutMs,
    ...(settings.pollIntervalMs === undefined ? {} : { pollIntervalMs: settings.pollIntervalMs }),
    sweep: () => outbox.sweep(clock.now(), payload),
  });
  const wake = (): void => deliverer.wake();
  let subscribed: EventEmitter<DispatcherEvents> | null = null;

  return {
    defaultUrl: settings.defaultUrl,
    async checkUrl(url) {
      if (settings.secrets.length === 0) {
        throw new AppError('webhooks_not_configured', 'Webhooks need a signing secret: the operator sets CESAR_WEBHOOK_SECRETS.');
      }
      await target.check(url);
    },
    async jobWebhook(jobId) {
      const webhook = await outbox.jobWebhook(jobId);
      return webhook ? { webhook, last: await outbox.lastMessage(jobId) } : null;
    },
    async deliveries(jobId) {
      const messages = await outbox.messages(jobId);
      return Promise.all(messages.map(async (message) => ({ message, attempts: await outbox.attempts(message.id) })));
    },
    async redeliver(jobId, messageId) {
      const message = await outbox.redeliver(jobId, messageId, clock.now());
      wake();
      return message;
    },
    async start(events) {
      subscribed = events;
      for (const name of ['job:claimed', 'job:completed', 'job:failed', 'job:reaped'] as const) {
        events.on(name, wake);
      }
      await deliverer.start();
    },
    async stop() {
      if (subscribed) {
        for (const name of ['job:claimed', 'job:completed', 'job:failed', 'job:reaped'] as const) {
          subscribed.off(name, wake);
        }
      }
      await deliverer.stop();
    },
  };
}
