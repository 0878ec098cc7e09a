/**
 * @module webhooks/deliverer
 * Sends the outbox: claims due messages, signs each attempt (same `webhook-id`, fresh timestamp), posts it and
 * records the attempt. 2xx succeeds; 410 disables the URL; another 4xx but 408/429 stops; everything else is
 * retried with exponential backoff and jitter, or later when the receiver's `Retry-After` asks for more.
 */
import { isAppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { AttemptOutcome, MessageRow, Outbox } from './outbox.ts';
import { signatureHeader } from './signature.ts';
import type { WebhookResponse, WebhookTarget } from './webhook-target.ts';

export interface DelivererOptions {
  outbox: Outbox;
  target: WebhookTarget;
  secrets: readonly string[];
  clock: Clock;
  logger: Logger;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  timeoutMs: number;
  /** Called before each round to queue the messages jobs owe. */
  sweep: () => Promise<unknown>;
  pollIntervalMs?: number;
  concurrency?: number;
  random?: () => number;
}

export interface Deliverer {
  start(): Promise<void>;
  /** Runs a round now (a job changed). */
  wake(): void;
  stop(): Promise<void>;
}

/** The longest `Retry-After` honoured; a receiver cannot park a message for days. */
const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

/** `base * 4^(attempt-1)`, capped, ±25 % jitter: with the defaults 5 s, 20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h, 6 h... */
export function webhookRetryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exponential = Math.min(maxMs, baseMs * 4 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.75 + random() * 0.5));
}

/** `Retry-After` as seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (header === null) {
    return null;
  }
  if (/^\d+$/.test(header.trim())) {
    return Number(header.trim()) * 1000;
  }
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

export function createDeliverer(options: DelivererOptions): Deliverer {
  const { outbox, target, secrets, clock, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const concurrency = options.concurrency ?? 4;
  const random = options.random ?? Math.random;
  const inFlight = new Set<Promise<void>>();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  let again = false;

  const outcomeOf = (attempt: AttemptOutcome['attempt'], response: WebhookResponse | null, permanent: boolean): AttemptOutcome => {
    const status = response?.status ?? null;
    if (status !== null && status >= 200 && status <= 299) {
      return { attempt, status: 'succeeded', nextAttemptAt: null, disableUrl: false };
    }
    if (status === 410) {
      return { attempt, status: 'disabled', nextAttemptAt: null, disableUrl: true };
    }
    const stops = permanent || (status !== null && status >= 400 && status <= 499 && status !== 408 && status !== 429);
    if (stops || attempt.attempt >= options.maxAttempts) {
      return { attempt, status: 'failed', nextAttemptAt: null, disableUrl: false };
    }
    const now = clock.now();
    const backoff = webhookRetryDelayMs(attempt.attempt, options.retryBaseMs, options.retryMaxMs, random);
    const asked = Math.min(MAX_RETRY_AFTER_MS, retryAfterMs(response?.retryAfter ?? null, now) ?? 0);
    return { attempt, status: 'pending', nextAttemptAt: now + Math.max(backoff, asked), disableUrl: false };
  };

  const deliver = async (message: MessageRow): Promise<void> => {
    const log = logger.child({ job_id: message.job_id, webhook_id: message.id, event: message.event });
    const startedAt = clock.now();
    if (await outbox.isDisabled(message.url)) {
      await outbox.finish(message, { attempt: { attempt: message.attempts, started_at: startedAt, status_code: null, error: null, duration_ms: 0 }, status: 'disabled', nextAttemptAt: null, disableUrl: false }, startedAt);
      log.info('webhook not sent: its URL answered 410 Gone before');
      return;
    }
    const timestamp = Math.floor(startedAt / 1000);
    let response: WebhookResponse | null = null;
    let error: string | null = null;
    let permanent = false;
    try {
      response = await target.post(message.url, {
        headers: {
          'content-type': 'application/json',
          'webhook-id': message.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(secrets, message.id, timestamp, message.payload),
        },
        body: message.payload,
        timeoutMs: options.timeoutMs,
        signal: controller.signal,
      });
    } catch (caught) {
      error = controller.signal.aborted ? 'interrupted: the server shut down' : caught instanceof Error ? caught.message : 'the request failed';
      permanent = isAppError(caught) && caught.code === 'url_forbidden';
    }
    const attempt = { attempt: message.attempts + 1, started_at: startedAt, status_code: response?.status ?? null, error, duration_ms: Math.max(0, clock.now() - startedAt) };
    // An attempt cut short by shutdown may have reached the receiver: it counts, and the next start sends again.
    const outcome: AttemptOutcome = controller.signal.aborted && response === null
      ? { attempt, status: 'pending', nextAttemptAt: clock.now(), disableUrl: false }
      : outcomeOf(attempt, response, permanent);
    await outbox.finish(message, outcome, clock.now());
    const fields = { attempt: attempt.attempt, status_code: attempt.status_code, error, outcome: outcome.status, next_attempt_at: outcome.nextAttemptAt };
    if (outcome.status === 'succeeded') {
      log.info('webhook delivered', fields);
    } else {
      log.warn('webhook attempt failed', fields);
    }
  };

  const round = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await options.sweep();
        const free = concurrency - inFlight.size;
        if (free <= 0 || controller.signal.aborted) {
          break;
        }
        const due = await outbox.claimDue(clock.now(), options.timeoutMs + 10_000, free);
        for (const message of due) {
          const task = deliver(message)
            .catch((error: unknown) => logger.error('webhook delivery failed unexpectedly', { webhook_id: message.id, error }))
            .finally(() => {
              inFlight.delete(task);
              void round();
            });
          inFlight.add(task);
        }
      } while (again && !controller.signal.aborted);
    } catch (error) {
      logger.error('webhook round failed', { error });
    } finally {
      running = false;
    }
  };

  return {
    async start() {
      await outbox.resetDelivering(clock.now());
      timer = setInterval(() => void round(), pollIntervalMs);
      void round();
    },
    wake() {
      if (timer !== null) {
        void round();
      }
    },
    async stop() {
      if (timer !== null) {
        clearInterval(timer);
        timer = null;
      }
      controller.abort();
      await Promise.allSettled([...inFlight]);
      while (running) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
