/**
 * @module webhooks/outbox
 * The persistent webhook outbox. Messages are derived from the jobs table by `sweep()`, not pushed by whoever
 * changed a job, so an event is queued whichever code path ended the job (worker, reaper, cancel) and even when
 * the process died between the job's change and the message: the next sweep finds the job still unannounced.
 */
import type { DeliveryStatus, WebhookEvent } from '../domain.ts';
import type { Database } from '../jobs/database.ts';
import type { JobRow } from '../jobs/job-store.ts';
import { newMessageId } from './signature.ts';
import { isWebhookEvent } from './webhook-events.ts';


export interface MessageRow {
  seq: number;
  id: string;
  job_id: string;
  event: WebhookEvent;
  dedupe_key: string;
  url: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number | null;
  lease_until: number | null;
  last_status_code: number | null;
  created_at: number;
  updated_at: number;
}

export interface AttemptRow {
  message_id: string;
  attempt: number;
  started_at: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface JobWebhookRow {
  job_id: string;
  url: string;
  events: string;
  done: number;
}

export interface AttemptOutcome {
  attempt: Omit<AttemptRow, 'message_id'>;
  status: DeliveryStatus;
  nextAttemptAt: number | null;
  /** The URL answered 410: stop sending there. */
  disableUrl: boolean;
}

export interface Outbox {
  jobWebhook(jobId: string): Promise<JobWebhookRow | undefined>;
  /** Queues the messages that jobs owe; `payload` renders a job's message body. Returns how many were queued. */
  sweep(now: number, payload: (job: JobRow, event: WebhookEvent) => string): Promise<number>;
  /** Takes due messages for delivery, each under a lease. */
  claimDue(now: number, leaseMs: number, limit: number): Promise<MessageRow[]>;
  finish(message: MessageRow, outcome: AttemptOutcome, now: number): Promise<void>;
  /** At start-up: deliveries the previous process left mid-flight are due again. */
  resetDelivering(now: number): Promise<number>;
  isDisabled(url: string): Promise<boolean>;
  messages(jobId: string): Promise<MessageRow[]>;
  lastMessage(jobId: string): Promise<MessageRow | undefined>;
  attempts(messageId: string): Promise<AttemptRow[]>;
  redeliver(jobId: string, messageId: string, now: number): Promise<MessageRow | undefined>;
}

interface SweepRow extends JobRow {
  webhook_url: string;
  webhook_events: string;
}

/** Jobs with a webhook whose current status has no message yet (a final status, or a new processing attempt). */
const OWED_SQL = `SELECT j.*, w.url AS webhook_url, w.events AS webhook_events
   FROM job_webhooks w JOIN jobs j ON j.id = w.job_id
  WHERE w.done = 0
    AND (j.status IN ('completed', 'failed', 'canceled')
         OR (j.status = 'processing' AND (',' || w.events || ',') LIKE '%,processing,%'
             AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.dedupe_key = j.id || ':processing:' || j.attempts)))`;

export function createOutbox(db: Database): Outbox {
  return {
    jobWebhook: (jobId) => db.read.get<JobWebhookRow>('SELECT * FROM job_webhooks WHERE job_id = ?', [jobId]),

    async sweep(now, payload) {
      // Most sweeps find nothing: look on the read connection first and take the write lock only when needed.
      if ((await db.read.all(OWED_SQL)).length === 0) {
        return 0;
      }
      return db.transaction(async (tx) => {
        const owed = await tx.all<SweepRow>(OWED_SQL);
        let queued = 0;
        for (const job of owed) {
          const event = job.status;
          const terminal = event !== 'processing';
          if (isWebhookEvent(event) && job.webhook_events.split(',').includes(event)) {
            const dedupeKey = terminal ? `${job.id}:${event}` : `${job.id}:processing:${job.attempts}`;
            const result = await tx.run(
              `INSERT INTO webhook_messages (id, job_id, event, dedupe_key, url, payload, status, next_attempt_at, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
              [newMessageId(), job.id, event, dedupeKey, job.webhook_url, payload(job, event), now, now, now],
            );
            queued += result.changes;
          }
          if (terminal) {
            await tx.run('UPDATE job_webhooks SET done = 1 WHERE job_id = ?', [job.id]);
          }
        }
        return queued;
      });
    },

    claimDue(now, leaseMs, limit) {
      // On a shared database a node that died mid-delivery leaves its messages `delivering`, and no restart of
      // that node may come: their lease ending makes them due again. SQLite has one process, which resets its
      // own at start (`resetDelivering`).
      const [due, dueParams] =
        db.dialect === 'postgres'
          ? ["((status = 'pending' AND next_attempt_at <= ?) OR (status = 'delivering' AND lease_until < ?))", [now, now]]
          : ["status = 'pending' AND next_attempt_at <= ?", [now]];
      return db.writeReturning<MessageRow>(
        `UPDATE webhook_messages SET status = 'delivering', lease_until = ?, updated_at = ?
          WHERE seq IN (SELECT seq FROM webhook_messages WHERE ${due} ORDER BY next_attempt_at, seq LIMIT ?)
            -- Checked again on the row itself: on PostgreSQL two nodes may pick the same message in the
            -- subquery, and only the row's current state lets exactly one of them take it.
            AND ${due}
          RETURNING *`,
        [now + leaseMs, now, ...dueParams, limit, ...dueParams],
      );
    },

    async finish(message, outcome, now) {
      await db.transaction(async (tx) => {
        // An outcome without a new attempt (a disabled URL) keeps the count.
        if (outcome.attempt.attempt > message.attempts) {
          await tx.run(
            `INSERT INTO webhook_attempts (message_id, attempt, started_at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (message_id, attempt) DO NOTHING`,
            [message.id, outcome.attempt.attempt, outcome.attempt.started_at, outcome.attempt.status_code, outcome.attempt.error, outcome.attempt.duration_ms],
          );
        }
        await tx.run(
          `UPDATE webhook_messages SET status = ?, attempts = ?, next_attempt_at = ?, lease_until = NULL,
                  last_status_code = COALESCE(?, last_status_code), updated_at = ?
            WHERE id = ? AND status = 'delivering'`,
          [outcome.status, outcome.attempt.attempt, outcome.nextAttemptAt, outcome.attempt.status_code, now, message.id],
        );
        if (outcome.disableUrl) {
          await tx.run('INSERT INTO webhook_disabled_urls (url, disabled_at) VALUES (?, ?) ON CONFLICT (url) DO NOTHING', [message.url, now]);
        }
      });
    },

    async resetDelivering(now) {
      // On PostgreSQL other live nodes may be delivering: only their lapsed leases are taken back.
      const lapsed = db.dialect === 'postgres' ? ' AND lease_until < ?' : '';
      return (
        await db.write(
          `UPDATE webhook_messages SET status = 'pending', lease_until = NULL, next_attempt_at = ?, updated_at = ? WHERE status = 'delivering'${lapsed}`,
          db.dialect === 'postgres' ? [now, now, now] : [now, now],
        )
      ).changes;
    },

    async isDisabled(url) {
      return (await db.read.get<{ url: string }>('SELECT url FROM webhook_disabled_urls WHERE url = ?', [url])) !== undefined;
    },

    messages: (jobId) => db.read.all<MessageRow>('SELECT * FROM webhook_messages WHERE job_id = ? ORDER BY seq', [jobId]),

    lastMessage: (jobId) => db.read.get<MessageRow>('SELECT * FROM webhook_messages WHERE job_id = ? ORDER BY seq DESC LIMIT 1', [jobId]),

    attempts: (messageId) => db.read.all<AttemptRow>('SELECT * FROM webhook_attempts WHERE message_id = ? ORDER BY attempt', [messageId]),

    redeliver(jobId, messageId, now) {
      return db.transaction(async (tx) => {
        const message = await tx.get<MessageRow>('SELECT * FROM webhook_messages WHERE id = ? AND job_id = ?', [messageId, jobId]);
        if (!message) {
          return undefined;
        }
        // An operator asking again overrides an earlier 410.
        await tx.run('DELETE FROM webhook_disabled_urls WHERE url = ?', [message.url]);
        if (message.status === 'delivering') {
          return message;
        }
        await tx.run(`UPDATE webhook_messages SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?`, [now, now, messageId]);
        return tx.get<MessageRow>('SELECT * FROM webhook_messages WHERE id = ?', [messageId]);
      });
    },
  };
}
