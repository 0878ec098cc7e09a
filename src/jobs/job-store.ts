/**
 * @module jobs/job-store
 * Every query on the jobs table, one function each. The queue gives at-least-once execution: a claim is one
 * atomic `UPDATE ... RETURNING` that sets an owner token and a lease, and every later change names that token,
 * so a worker that lost its lease (reaped, deleted, canceled) changes nothing.
 */
import type { JobStatus, JobTask, TimestampGranularity, WebhookEvent } from '../domain.ts';
import type { Transcript } from '../transcripts/transcript.ts';
import type { ErrorCode } from '../errors.ts';
import type { Database } from './database.ts';
import { sqlDialect } from './database.ts';
import { jobStateView } from './job-view.ts';


export interface JobRow {
  seq: number;
  id: string;
  status: JobStatus;
  model: string;
  language: string | null;
  task: JobTask;
  file_name: string | null;
  input_path: string;
  duration_seconds: number | null;
  progress: number;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  error_code: ErrorCode | null;
  error_message: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  /** The URL to download before decoding, for jobs submitted as a URL. */
  source_url: string | null;
  media_start_seconds: number | null;
  /** How long the job is kept once finished; null only on rows older than the retention migration. */
  retention_seconds: number | null;
  timestamp_granularity: TimestampGranularity | null;
  processed_seconds: number;
  speed: number | null;
  /** 1: interactive (claimed first), 0: batch. */
  priority: JobPriority;
  /** The tag of the API key that submitted the job; null when keys were off. */
  submitted_by: string | null;
}

/** 1: interactive, a client waits for the answer (OpenAI-compatible endpoints); 0: batch. */
export type JobPriority = 0 | 1;
export const INTERACTIVE_PRIORITY: JobPriority = 1;

export interface NewJob {
  id: string;
  model: string;
  language: string | null;
  task: JobTask;
  fileName: string | null;
  inputPath: string;
  maxAttempts: number;
  sourceUrl?: string | null;
  retentionSeconds: number;
  timestampGranularity?: TimestampGranularity | null;
  /** Batch (0) when absent. */
  priority?: JobPriority;
  /** The tag of the submitting API key; null when keys are off. */
  submittedBy?: string | null;
  /** Stored with the job, in its transaction: a worker on any node may run the job the moment it commits. */
  webhook?: { url: string; events: readonly WebhookEvent[] } | null;
}

export interface JobFailure {
  code: ErrorCode;
  message: string;
}

export interface ListJobsQuery {
  status?: JobStatus | undefined;
  limit: number;
  offset?: number | undefined;
  /** Only jobs older than this sequence number (cursor paging, newest first). */
  beforeSeq?: number | undefined;
  /** Only the jobs of this API key tag. */
  submittedBy?: string | undefined;
}

export interface JobStore {
  /** Inserts the job, its webhook and its first status event, `pending`, so that a replay of its events starts there. */
  enqueue(job: NewJob, now: number): Promise<JobRow>;
  get(id: string): Promise<JobRow | undefined>;
  list(query: ListJobsQuery): Promise<JobRow[]>;
  /** Takes the runnable pending job of the highest priority, oldest first, for `owner`; or nothing. */
  claim(owner: string, now: number, leaseMs: number): Promise<JobRow | undefined>;
  /** Extends the lease and records progress; false when `owner` no longer holds the job. */
  heartbeat(id: string, owner: string, now: number, leaseMs: number, progress: JobProgress): Promise<boolean>;
  complete(id: string, owner: string, now: number, transcript: Transcript): Promise<boolean>;
  /** Fails the job, or sends it back to pending until `retryAt` when given. */
  fail(id: string, owner: string, now: number, failure: JobFailure, retryAt: number | null): Promise<boolean>;
  /** Gives a running job back to the queue without counting the attempt (shutdown). */
  release(id: string, owner: string, now: number): Promise<boolean>;
  /** Marks a pending or processing job canceled; returns the job as it was, or undefined when absent. */
  cancel(id: string, now: number): Promise<{ before: JobRow; canceled: boolean } | undefined>;
  /** Requeues (or fails, when attempts are spent) jobs whose lease expired. */
  reapExpired(now: number): Promise<{ id: string; status: JobStatus }[]>;
  remove(id: string): Promise<JobRow | undefined>;
  /** Records the container's start time once the media has been probed; false when `owner` lost the job. */
  recordMediaStart(id: string, owner: string, startSeconds: number): Promise<boolean>;
  transcript(id: string): Promise<Transcript | undefined>;
  /** Jobs waiting to run, counted up to `atMost` (backpressure only needs to know whether the limit is reached). */
  pendingCount(atMost: number): Promise<number>;
  /** Deletes up to `limit` finished jobs whose retention ended by `now`; returns them. */
  removeExpired(now: number, limit: number): Promise<{ id: string; input_path: string }[]>;
  /** Gives rows that predate per-job retention the default; returns how many. */
  fillRetention(defaultSeconds: number): Promise<number>;
  /** The status of each of `ids` that still has a row. */
  statuses(ids: readonly string[]): Promise<Map<string, JobStatus>>;
  /** Records how much audio is transcribed and how fast; false when `owner` no longer holds the job. */
  recordProgress(id: string, owner: string, now: number, progress: TranscriptionProgress): Promise<boolean>;
  /** 1 for the pending job that runs next, in claim order; null for a job that is not pending. */
  queuePosition(job: JobRow): Promise<number | null>;
  /** `queuePosition` of several jobs (a page of a listing) at the cost of about one count; keyed by job id. */
  queuePositions(jobs: readonly JobRow[]): Promise<Map<string, number>>;
}

export interface TranscriptionProgress {
  progress: number;
  processedSeconds: number;
  /** Audio seconds per wall second. */
  speed: number | null;
}

export interface JobProgress {
  progress: number;
  durationSeconds: number | null;
}

/** A row comes before the job given by the parameters in claim order (see `claimOrderParams`). */
const CLAIM_ORDER_BEFORE = '(priority > ? OR (priority = ? AND (run_at < ? OR (run_at = ? AND seq < ?))))';
/** A row comes after the job given by the parameters in claim order. */
const CLAIM_ORDER_AFTER = '(priority < ? OR (priority = ? AND (run_at > ? OR (run_at = ? AND seq > ?))))';
const claimOrderParams = (job: JobRow): number[] => [job.priority, job.priority, job.run_at, job.run_at, job.seq];

export function createJobStore(db: Database): JobStore {
  const { greatest, indexedBy } = sqlDialect(db);
  const queuePositions: JobStore['queuePositions'] = async (jobs) => {
    const pending = jobs
      .filter((job) => job.status === 'pending')
      .sort((a, b) => b.priority - a.priority || a.run_at - b.run_at || a.seq - b.seq);
    const first = pending[0];
    const last = pending.at(-1);
    const positions = new Map<string, number>();
    if (!first || !last) {
      return positions;
    }
    // One count up to the earliest job in claim order (priority, run_at, then seq), then a walk over the few
    // pending rows from there to the last: counting separately for each job of a page scanned the queue each time.
    const before = await db.read.get<{ ahead: number }>(
      `SELECT COUNT(*) AS ahead FROM jobs ${indexedBy('jobs_claimable')}
        WHERE status = 'pending' AND ${CLAIM_ORDER_BEFORE}`,
      claimOrderParams(first),
    );
    const span = await db.read.all<{ id: string }>(
      `SELECT id FROM jobs ${indexedBy('jobs_claimable')}
        WHERE status = 'pending' AND NOT ${CLAIM_ORDER_BEFORE} AND NOT ${CLAIM_ORDER_AFTER}
        ORDER BY priority DESC, run_at, seq`,
      [...claimOrderParams(first), ...claimOrderParams(last)],
    );
    const wanted = new Set(pending.map((job) => job.id));
    span.forEach((row, index) => {
      if (wanted.has(row.id)) {
        positions.set(row.id, (before?.ahead ?? 0) + index + 1);
      }
    });
    return positions;
  };

  return {
    enqueue(job, now) {
      return db.transaction(async (tx) => {
        const rows = await tx.all<JobRow>(
          `INSERT INTO jobs (id, status, model, language, task, file_name, input_path, max_attempts, run_at, created_at, updated_at,
                             source_url, retention_seconds, timestamp_granularity, priority, submitted_by)
           VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
          [
            job.id, job.model, job.language, job.task, job.fileName, job.inputPath, job.maxAttempts, now, now, now,
            job.sourceUrl ?? null, job.retentionSeconds, job.timestampGranularity ?? null, job.priority ?? 0,
            job.submittedBy ?? null,
          ],
        );
        const row = rows[0];
        if (!row) {
          throw new Error('insert returned no row');
        }
        // In the same transaction: a worker may claim the job the moment it commits, and `pending` must come first.
        await tx.run(`INSERT INTO job_events (job_id, type, data, created_at) VALUES (?, 'status', ?, ?)`, [row.id, JSON.stringify(jobStateView(row)), now]);
        if (job.webhook) {
          await tx.run('INSERT INTO job_webhooks (job_id, url, events) VALUES (?, ?, ?)', [row.id, job.webhook.url, job.webhook.events.join(',')]);
        }
        return row;
      });
    },

    get: (id) => db.read.get<JobRow>('SELECT * FROM jobs WHERE id = ?', [id]),

    list(query) {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (query.status !== undefined) {
        where.push('status = ?');
        params.push(query.status);
      }
      if (query.beforeSeq !== undefined) {
        where.push('seq < ?');
        params.push(query.beforeSeq);
      }
      if (query.submittedBy !== undefined) {
        where.push('submitted_by = ?');
        params.push(query.submittedBy);
      }
      params.push(query.limit, query.offset ?? 0);
      return db.read.all<JobRow>(
        `SELECT * FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ? OFFSET ?`,
        params,
      );
    },

    // INDEXED BY: without statistics the planner takes jobs_by_status and sorts every pending row (33 ms per
    // claim with 50,000 pending, measured by scripts/bench-queue.ts); the partial indexes make it one seek.
    async claim(owner, now, leaseMs) {
      const rows = await db.writeReturning<JobRow>(
        `UPDATE jobs
            SET status = 'processing', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
                started_at = COALESCE(started_at, ?), updated_at = ?,
                -- A new attempt starts from the beginning of the audio: so do its progress and speed.
                progress = 0, processed_seconds = 0, speed = NULL
          WHERE seq = (SELECT seq FROM jobs ${indexedBy('jobs_claimable')} WHERE status = 'pending' AND run_at <= ? ORDER BY priority DESC, run_at, seq LIMIT 1)
            AND status = 'pending'
          RETURNING *`,
        [owner, now + leaseMs, now, now, now],
      );
      return rows[0];
    },

    async heartbeat(id, owner, now, leaseMs, progress) {
      const result = await db.write(
        `UPDATE jobs SET lease_until = ?, progress = ${greatest('progress', '?')}, duration_seconds = COALESCE(?, duration_seconds), updated_at = ?
          WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
        [now + leaseMs, progress.progress, progress.durationSeconds, now, id, owner],
      );
      return result.changes === 1;
    },

    complete(id, owner, now, transcript) {
      return db.transaction(async (tx) => {
        const result = await tx.run(
          `UPDATE jobs SET status = 'completed', progress = 100, duration_seconds = ?, lease_owner = NULL, lease_until = NULL,
                  error_code = NULL, error_message = NULL, completed_at = ?, updated_at = ?
            WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
          [transcript.durationSeconds, now, now, id, owner],
        );
        if (result.changes !== 1) {
          return false;
        }
        await tx.run('INSERT INTO transcripts (job_id, body, created_at) VALUES (?, ?, ?)', [id, JSON.stringify(transcript), now]);
        return true;
      });
    },

    async fail(id, owner, now, failure, retryAt) {
      const result =
        retryAt === null
          ? await db.write(
              `UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_until = NULL, error_code = ?, error_message = ?,
                      completed_at = ?, updated_at = ?
                WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
              [failure.code, failure.message, now, now, id, owner],
            )
          : await db.write(
              `UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, error_code = ?, error_message = ?,
                      run_at = ?, updated_at = ?
                WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
              [failure.code, failure.message, retryAt, now, id, owner],
            );
      return result.changes === 1;
    },

    async release(id, owner, now) {
      const result = await db.write(
        `UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, attempts = ${greatest('attempts - 1', '0')},
                run_at = ?, updated_at = ?
          WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
        [now, now, id, owner],
      );
      return result.changes === 1;
    },

    cancel(id, now) {
      return db.transaction(async (tx) => {
        const before = await tx.get<JobRow>('SELECT * FROM jobs WHERE id = ?', [id]);
        if (!before) {
          return undefined;
        }
        if (before.status !== 'pending' && before.status !== 'processing') {
          return { before, canceled: false };
        }
        await tx.run(
          `UPDATE jobs SET status = 'canceled', lease_owner = NULL, lease_until = NULL, error_code = 'canceled',
                  error_message = 'The job was canceled.', completed_at = ?, updated_at = ?
            WHERE id = ?`,
          [now, now, id],
        );
        return { before, canceled: true };
      });
    },

    reapExpired(now) {
      return db.writeReturning<{ id: string; status: JobStatus }>(
        `UPDATE jobs
            SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
                completed_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END,
                run_at = ?, lease_owner = NULL, lease_until = NULL, error_code = 'worker_crashed',
                error_message = 'The worker stopped renewing its lease (it crashed or the server was killed).',
                updated_at = ?
          WHERE seq IN (SELECT seq FROM jobs ${indexedBy('jobs_leased')} WHERE status = 'processing' AND lease_until < ?)
          RETURNING id, status`,
        [now, now, now, now],
      );
    },

    async remove(id) {
      const rows = await db.writeReturning<JobRow>('DELETE FROM jobs WHERE id = ? RETURNING *', [id]);
      return rows[0];
    },

    async recordMediaStart(id, owner, startSeconds) {
      const result = await db.write(
        `UPDATE jobs SET media_start_seconds = ? WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
        [startSeconds, id, owner],
      );
      return result.changes === 1;
    },

    async transcript(id) {
      const row = await db.read.get<{ body: string }>('SELECT body FROM transcripts WHERE job_id = ?', [id]);
      return row ? (JSON.parse(row.body) as Transcript) : undefined;
    },

    async pendingCount(atMost) {
      const row = await db.read.get<{ n: number }>(
        `SELECT COUNT(*) AS n FROM (SELECT 1 FROM jobs ${indexedBy('jobs_claimable')} WHERE status = 'pending' LIMIT ?) AS waiting`,
        [atMost],
      );
      return row?.n ?? 0;
    },

    removeExpired(now, limit) {
      // The same expression and condition as the jobs_expiry index, so the sweep reads only expired rows.
      return db.writeReturning<{ id: string; input_path: string }>(
        `DELETE FROM jobs WHERE seq IN (
           SELECT seq FROM jobs ${indexedBy('jobs_expiry')}
            WHERE status IN ('completed', 'failed', 'canceled') AND completed_at + retention_seconds * 1000 <= ?
              -- A job keeps its row while it still owes a webhook: deleting it would drop the message too.
              AND NOT EXISTS (SELECT 1 FROM job_webhooks w WHERE w.job_id = jobs.id AND w.done = 0)
              AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.job_id = jobs.id AND m.status IN ('pending', 'delivering'))
            LIMIT ?)
         RETURNING id, input_path`,
        [now, limit],
      );
    },

    async fillRetention(defaultSeconds) {
      const result = await db.write('UPDATE jobs SET retention_seconds = ? WHERE retention_seconds IS NULL', [defaultSeconds]);
      return result.changes;
    },

    async statuses(ids) {
      const found = new Map<string, JobStatus>();
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const rows = await db.read.all<{ id: string; status: JobStatus }>(
          `SELECT id, status FROM jobs WHERE id IN (${chunk.map(() => '?').join(', ')})`,
          chunk,
        );
        for (const row of rows) {
          found.set(row.id, row.status);
        }
      }
      return found;
    },

    async recordProgress(id, owner, now, progress) {
      const result = await db.write(
        `UPDATE jobs SET progress = ${greatest('progress', '?')}, processed_seconds = ${greatest('processed_seconds', '?')}, speed = ?, updated_at = ?
          WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
        [progress.progress, progress.processedSeconds, progress.speed, now, id, owner],
      );
      return result.changes === 1;
    },

    queuePositions,

    async queuePosition(job) {
      return (await queuePositions([job])).get(job.id) ?? null;
    },

  };
}
