/**
 * @module postgres/job-store
 * The `JobStore` on PostgreSQL with its queue on pg-boss 12. The `jobs` table stays what clients read (status,
 * progress, attempts, errors, transcript); pg-boss holds the queue: who may run a job next, the heartbeat that
 * tells a live worker from a dead one, retries and their delay.
 *
 * Every change of a job's state writes both in one transaction (pg-boss takes the connection as its `db`
 * option). A claim's `lease_owner` is the dispatcher's owner plus the pg-boss attempt (`retryCount`); every
 * later change names it, and pg-boss's own settle calls are fenced to that attempt, so a worker whose attempt
 * pg-boss gave to another (it missed its heartbeat) changes nothing.
 */
import { PgBoss } from 'pg-boss';
import type { Db, JobWithMetadata } from 'pg-boss';
import pg from 'pg';

import type { JobStatus } from '../domain.ts';
import type { JobRow, JobStore } from '../jobs/job-store.ts';
import { createJobStore } from '../jobs/job-store.ts';
import { jobStateView } from '../jobs/job-view.ts';
import type { Logger } from '../logger.ts';
import type { PostgresDatabase } from './database.ts';
import { numberPlaceholders } from './database.ts';

export const QUEUE = 'cesar-transcription';
const WAKE_CHANNEL = 'cesar_jobs';
/** pg-boss's ceiling on one attempt; the heartbeat, not this, is what notices a dead worker. */
const MAX_RUN_SECONDS = 24 * 3600;
const WORKER_CRASHED_MESSAGE = 'The worker stopped renewing its lease (it crashed or the server was killed).';

export interface PostgresJobStoreOptions {
  db: PostgresDatabase;
  url: string;
  logger: Logger;
  /** The dispatcher's lease; pg-boss's heartbeat window is this, at least the 10 s pg-boss allows. */
  leaseMs: number;
  /** Retry delay of pg-boss (exponential with jitter), close to the dispatcher's own. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export interface PostgresJobStore extends JobStore {
  /** Calls `listener` whenever a job is enqueued on any node. */
  subscribe(listener: () => void): () => void;
  close(): Promise<void>;
}

interface Attempt {
  id: string;
  retryCount: number;
}

/** The lease owner of a claim: the dispatcher's owner, then the pg-boss attempt it holds. */
const leaseToken = (owner: string, retryCount: number): string => `${owner}/${retryCount}`;
const attemptOf = (id: string, token: string): Attempt => ({ id, retryCount: Number(token.slice(token.lastIndexOf('/') + 1)) });

/** pg-boss's calls run on this client, inside the caller's transaction. */
const onClient = (client: pg.PoolClient): Db => ({
  executeSql: (text: string, values?: unknown[]) => client.query(text, values),
});

const affected = (response: object): number => ('affected' in response && typeof response.affected === 'number' ? response.affected : 0);

export async function createPostgresJobStore(options: PostgresJobStoreOptions): Promise<PostgresJobStore> {
  const { db, logger } = options;
  const heartbeatSeconds = Math.max(10, Math.ceil(options.leaseMs / 1000));
  const boss = new PgBoss({
    connectionString: options.url,
    // 1 s: a job whose worker died is failed by the monitor (and so retried) about one heartbeat window after
    // the worker's last sign of life; at the default 60 s it waited a minute more (docs/scale-out.md). The
    // monitor runs inside the supervise pass, so that interval must be 1 s as well. The passes take a lock:
    // of many nodes one does the work each second.
    monitorIntervalSeconds: 1,
    superviseIntervalSeconds: 1,
    schedule: false,
    max: 4,
  });
  // Connection errors (PostgreSQL restarting) are reported here; unhandled they would end the process.
  boss.on('error', (error) => logger.warn('pg-boss error', { error }));
  await boss.start();
  await db.exclusively('create-queue', () => boss.createQueue(QUEUE, { retentionSeconds: 365 * 24 * 3600 }));
  if (!(await boss.getQueue(QUEUE))) {
    // Another node held the lock and is creating it: createQueue is idempotent, so wait for it by doing it.
    await boss.createQueue(QUEUE, { retentionSeconds: 365 * 24 * 3600 });
  }
  const shared = createJobStore(db);

  const listeners = new Set<() => void>();
  let listener: pg.Client | null = null;
  let closed = false;
  let reconnectTimer: NodeJS.Timeout | null = null;
  const wakeAll = (): void => {
    for (const each of listeners) {
      each();
    }
  };
  const listen = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: options.url, application_name: 'cesar-listener' });
    const retry = (error?: Error): void => {
      if (error) {
        logger.warn('job wake-up listener lost its connection; reconnecting', { error });
      }
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (listener === client) {
        listener = null;
      }
      if (!closed && reconnectTimer === null) {
        reconnectTimer = setTimeout(() => {
          reconnectTimer = null;
          void listen();
        }, 1000);
      }
    };
    client.on('error', retry);
    client.on('end', () => retry());
    client.on('notification', wakeAll);
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKE_CHANNEL}`);
      listener = client;
      // Jobs enqueued while no one listened are looked for now.
      wakeAll();
    } catch (error) {
      retry(error instanceof Error ? error : new Error(String(error)));
    }
  };
  await listen();

  const updateRow = async (client: pg.PoolClient, sql: string, params: unknown[]): Promise<JobRow[]> =>
    (await client.query<JobRow>(numberPlaceholders(sql), params)).rows;

  const store: PostgresJobStore = {
    ...shared,

    enqueue(job, now) {
      return db.withTransaction(async (client) => {
        const [row] = await updateRow(
          client,
          `INSERT INTO jobs (id, status, model, language, task, file_name, input_path, max_attempts, run_at, created_at, updated_at,
                             source_url, retention_seconds, timestamp_granularity, priority, submitted_by)
           VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
          [
            job.id, job.model, job.language, job.task, job.fileName, job.inputPath, job.maxAttempts, now, now, now,
            job.sourceUrl ?? null, job.retentionSeconds, job.timestampGranularity ?? null, job.priority ?? 0,
            job.submittedBy ?? null,
          ],
        );
        if (!row) {
          throw new Error('insert returned no row');
        }
        await client.query(`INSERT INTO job_events (job_id, type, data, created_at) VALUES ($1, 'status', $2, $3)`, [row.id, JSON.stringify(jobStateView(row)), now]);
        if (job.webhook) {
          await client.query('INSERT INTO job_webhooks (job_id, url, events) VALUES ($1, $2, $3)', [row.id, job.webhook.url, job.webhook.events.join(',')]);
        }
        await boss.send(QUEUE, { id: row.id }, {
          id: row.id,
          priority: row.priority,
          retryLimit: row.max_attempts - 1,
          heartbeatSeconds,
          expireInSeconds: MAX_RUN_SECONDS,
          retryDelay: Math.max(1, Math.round(options.retryBaseMs / 1000)),
          retryBackoff: true,
          retryDelayMax: Math.max(1, Math.round(options.retryMaxMs / 1000)),
          db: onClient(client),
        });
        // Delivered at commit, to every node's listener.
        await client.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, row.id]);
        return row;
      });
    },

    async claim(owner, now, leaseMs) {
      // A queue entry whose row is gone or already final is settled and skipped; the next one is tried.
      for (;;) {
        const outcome = await db.withTransaction(async (client) => {
          const [job] = await boss.fetch(QUEUE, { batchSize: 1, db: onClient(client) });
          if (!job) {
            return { kind: 'empty' } as const;
          }
          const [row] = await updateRow(
            client,
            `UPDATE jobs
                SET status = 'processing', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
                    started_at = COALESCE(started_at, ?), updated_at = ?, progress = 0, processed_seconds = 0, speed = NULL
              WHERE id = ? AND status IN ('pending', 'processing')
              RETURNING *`,
            [leaseToken(owner, job.retryCount), now + leaseMs, now, now, job.id],
          );
          if (!row) {
            await boss.complete(QUEUE, { id: job.id, retryCount: job.retryCount }, { skipped: 'no runnable job row' }, { db: onClient(client) });
            return { kind: 'skipped' } as const;
          }
          return { kind: 'claimed', row } as const;
        });
        if (outcome.kind === 'empty') {
          return undefined;
        }
        if (outcome.kind === 'claimed') {
          return outcome.row;
        }
      }
    },

    heartbeat(id, owner, now, leaseMs, progress) {
      return db.withTransaction(async (client) => {
        const rows = await updateRow(
          client,
          `UPDATE jobs SET lease_until = ?, progress = GREATEST(progress, ?), duration_seconds = COALESCE(?, duration_seconds), updated_at = ?
            WHERE id = ? AND lease_owner = ? AND status = 'processing' RETURNING id`,
          [now + leaseMs, progress.progress, progress.durationSeconds, now, id, owner],
        );
        if (rows.length !== 1) {
          return false;
        }
        // pg-boss's monitor may have failed this attempt already (no heartbeat reached it): then the job is
        // another attempt's, and this worker must stop.
        const touched = await boss.touch(QUEUE, attemptOf(id, owner), { db: onClient(client) });
        return affected(touched) === 1;
      });
    },

    complete(id, owner, now, transcript) {
      return db.withTransaction(async (client) => {
        const rows = await updateRow(
          client,
          `UPDATE jobs SET status = 'completed', progress = 100, duration_seconds = ?, lease_owner = NULL, lease_until = NULL,
                  error_code = NULL, error_message = NULL, completed_at = ?, updated_at = ?
            WHERE id = ? AND lease_owner = ? AND status = 'processing' RETURNING id`,
          [transcript.durationSeconds, now, now, id, owner],
        );
        if (rows.length !== 1) {
          return false;
        }
        await client.query('INSERT INTO transcripts (job_id, body, created_at) VALUES ($1, $2, $3)', [id, JSON.stringify(transcript), now]);
        // Fenced to this attempt. If pg-boss gave up on it meanwhile (a missed heartbeat) and no other worker has
        // claimed the job yet, the row still names this worker: its transcript is kept, and the retry pg-boss
        // queued finds the row completed and is skipped at its claim.
        await boss.complete(QUEUE, attemptOf(id, owner), null, { db: onClient(client) });
        return true;
      });
    },

    fail(id, owner, now, failure, retryAt) {
      return db.withTransaction(async (client) => {
        const attempt = attemptOf(id, owner);
        const [row] = await updateRow(
          client,
          retryAt === null
            ? `UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_until = NULL, error_code = ?, error_message = ?,
                      completed_at = ?, updated_at = ?
                WHERE id = ? AND lease_owner = ? AND status = 'processing' RETURNING *`
            : `UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, error_code = ?, error_message = ?,
                      run_at = ?, updated_at = ?
                WHERE id = ? AND lease_owner = ? AND status = 'processing' RETURNING *`,
          [failure.code, failure.message, retryAt ?? now, now, id, owner],
        );
        if (!row) {
          return false;
        }
        const onThis = { db: onClient(client) };
        if (retryAt === null) {
          // Cesar decided the job is over (a failure no retry mends): pg-boss has no "fail without retrying" for a
          // fetched job, so its entry is completed with the failure as its output.
          await boss.complete(QUEUE, attempt, { failed: failure.code }, onThis);
          return true;
        }
        await boss.fail(QUEUE, attempt, { code: failure.code, message: failure.message }, onThis);
        const queued = await boss.getJobById(QUEUE, id, onThis);
        if (queued?.state === 'retry') {
          // The dispatcher's backoff decides when, as on SQLite; the row says the same time.
          await boss.update(QUEUE, undefined, { id, startAfter: new Date(retryAt), ...onThis });
        } else {
          // pg-boss spent its retries (they can only drift from the row's count by a release): the row follows it.
          await client.query(`UPDATE jobs SET status = 'failed', completed_at = $1 WHERE id = $2`, [now, id]);
        }
        return true;
      });
    },

    release(id, owner, now) {
      return db.withTransaction(async (client) => {
        const rows = await updateRow(
          client,
          `UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, attempts = GREATEST(attempts - 1, 0),
                  run_at = ?, updated_at = ?
            WHERE id = ? AND lease_owner = ? AND status = 'processing' RETURNING id`,
          [now, now, id, owner],
        );
        if (rows.length !== 1) {
          return false;
        }
        // pg-boss cannot hand an active job back without counting the attempt. The nearest: cancel and resume it
        // (back to `created`, to run at once), and give it one more retry, since its next claim will count one.
        const onThis = { db: onClient(client) };
        await boss.cancel(QUEUE, attemptOf(id, owner), onThis);
        await boss.resume(QUEUE, id, onThis);
        const queued = await boss.getJobById(QUEUE, id, onThis);
        if (queued) {
          await boss.update(QUEUE, undefined, { id, retryLimit: queued.retryLimit + 1, ...onThis });
        }
        await client.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, id]);
        return true;
      });
    },

    cancel(id, now) {
      return db.withTransaction(async (client) => {
        // FOR UPDATE: a claim or a completion on another node waits, so the status read here is the one changed.
        const [before] = await updateRow(client, 'SELECT * FROM jobs WHERE id = ? FOR UPDATE', [id]);
        if (!before) {
          return undefined;
        }
        if (before.status !== 'pending' && before.status !== 'processing') {
          return { before, canceled: false };
        }
        await client.query(
          `UPDATE jobs SET status = 'canceled', lease_owner = NULL, lease_until = NULL, error_code = 'canceled',
                  error_message = 'The job was canceled.', completed_at = $1, updated_at = $1
            WHERE id = $2`,
          [now, id],
        );
        // A running job's worker learns it at its next heartbeat, whichever node it is on.
        await boss.cancel(QUEUE, id, { db: onClient(client) });
        return { before, canceled: true };
      });
    },

    async reapExpired(now) {
      // One node at a time; the others find the lock taken and reap nothing this round.
      const reaped = await db.exclusively('reaper', async () => {
        const expired = await db.read.all<JobRow>(`SELECT * FROM jobs WHERE status = 'processing' AND lease_until < ?`, [now]);
        const done: { id: string; status: JobStatus }[] = [];
        for (const row of expired) {
          const queued: JobWithMetadata | null = await boss.getJobById(QUEUE, row.id);
          if (queued?.state === 'active') {
            // pg-boss still counts the attempt as alive (its monitor fails it one heartbeat window after the last
            // touch), or another worker's claim is about to write the row: not ours to decide yet.
            continue;
          }
          // Queued again (the monitor failed the attempt and a retry is left): pending until pg-boss runs it.
          // Anything else: pg-boss will not run the job again.
          const requeued = queued?.state === 'retry' || queued?.state === 'created';
          const status: JobStatus = requeued ? 'pending' : 'failed';
          const changed = await db.write(
            `UPDATE jobs SET status = ?, completed_at = ?, run_at = ?, lease_owner = NULL, lease_until = NULL,
                    error_code = 'worker_crashed', error_message = ?, updated_at = ?
              WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
            [status, requeued ? null : now, requeued ? queued.startAfter.getTime() : now, WORKER_CRASHED_MESSAGE, now, row.id, row.lease_owner],
          );
          if (changed.changes === 1) {
            done.push({ id: row.id, status });
          }
        }
        return done;
      });
      return reaped ?? [];
    },

    remove(id) {
      return db.withTransaction(async (client) => {
        const [row] = await updateRow(client, 'DELETE FROM jobs WHERE id = ? RETURNING *', [id]);
        if (row) {
          await boss.deleteJob(QUEUE, id, { db: onClient(client) });
        }
        return row;
      });
    },

    subscribe(wake) {
      listeners.add(wake);
      return () => listeners.delete(wake);
    },

    async close() {
      closed = true;
      if (reconnectTimer) {
        clearTimeout(reconnectTimer);
      }
      const client = listener;
      listener = null;
      if (client) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        await client.end().catch(() => undefined);
      }
      await boss.stop({ graceful: false, close: true });
    },
  };
  return store;
}
