/**
 * @module jobs/job-events
 * The per-job event log behind `GET /jobs/{id}/events`: status changes, progress and finished segments, stored
 * so that a client reconnecting with `Last-Event-ID` gets exactly what it missed. Status events are derived
 * from the job row (`syncStatus`), so a change made by any code path shows, not only the dispatcher's.
 */
import { EventEmitter } from 'node:events';

import type { Clock } from '../clock.ts';
import type { ProgressMessage } from '../transcription/task-messages.ts';
import type { Database, Queryable } from './database.ts';
import type { DispatcherEvents } from './dispatcher.ts';
import type { JobRow } from './job-store.ts';
import { jobStateView, progressPercent } from './job-view.ts';

export type JobEventType = 'status' | 'progress' | 'segment';

export interface JobEventRow {
  seq: number;
  job_id: string;
  type: JobEventType;
  data: string;
  created_at: number;
}

/** Waits for one job's next events; see `JobEventLog.watch`. */
export interface JobEventWatch {
  /**
   * Resolves when the job got events since the previous call (at once if they came while the caller was reading),
   * when `maxMs` passed, or when the watch's signal aborted. True when it waited the whole `maxMs` in quiet.
   */
  next(maxMs: number): Promise<boolean>;
  close(): void;
}

export interface JobEventLog {
  /** Events of a job after `afterSeq`, oldest first. */
  after(jobId: string, afterSeq: number): Promise<JobEventRow[]>;
  /** Logs a status event when the job's status differs from the last one logged. */
  syncStatus(jobId: string): Promise<void>;
  /** Resolves once the progress and segment events this process was given for the job are stored. */
  progressStored(jobId: string): Promise<void>;
  /** Called whenever a job got new events. */
  readonly appended: EventEmitter<{ appended: [jobId: string] }>;
  /**
   * Follows one job for a reader that loops "read the job, then wait": events in this process wake it at once;
   * changes no event announces (another process, a deletion) are caught by the caller's own `maxMs`.
   */
  watch(jobId: string, signal: AbortSignal): JobEventWatch;
  start(events: EventEmitter<DispatcherEvents>): void;
  stop(): void;
}

export function createJobEventLog(db: Database, clock: Clock, onError: (error: unknown) => void): JobEventLog {
  const appended = new EventEmitter<{ appended: [jobId: string] }>();
  appended.setMaxListeners(0);
  const unsubscribe: (() => void)[] = [];

  /**
   * On PostgreSQL, writers of one job's events take turns: `seq` is handed out at insert but seen at commit, and
   * a reader resuming after seq 7 must not later find a 6 that committed after it. SQLite's writes are serial.
   */
  const takeTurn = async (tx: Queryable, jobId: string): Promise<void> => {
    if (db.dialect === 'postgres') {
      await tx.get('SELECT pg_advisory_xact_lock(hashtext(?)) AS locked', [`job-events:${jobId}`]);
    }
  };

  const syncStatus = async (jobId: string): Promise<void> => {
    const added = await db.transaction(async (tx) => {
      await takeTurn(tx, jobId);
      const job = await tx.get<JobRow>('SELECT * FROM jobs WHERE id = ?', [jobId]);
      if (!job) {
        return false;
      }
      const last = await tx.get<{ data: string }>(`SELECT data FROM job_events WHERE job_id = ? AND type = 'status' ORDER BY seq DESC LIMIT 1`, [jobId]);
      const lastStatus = last ? (JSON.parse(last.data) as { status: string }).status : null;
      if (lastStatus === job.status) {
        return false;
      }
      await tx.run(`INSERT INTO job_events (job_id, type, data, created_at) VALUES (?, 'status', ?, ?)`, [jobId, JSON.stringify(jobStateView(job)), clock.now()]);
      return true;
    });
    if (added) {
      appended.emit('appended', jobId);
    }
  };

  /** Each job's progress writes, one after the other in the order the worker sent them. */
  const progressWrites = new Map<string, Promise<void>>();
  const progressStored = async (jobId: string): Promise<void> => {
    await progressWrites.get(jobId);
  };

  const writeProgress = async (jobId: string, message: ProgressMessage): Promise<void> => {
    const percent = progressPercent(message.processedSeconds, message.durationSeconds);
    const now = clock.now();
    const { segment } = message;
    await db.transaction(async (tx) => {
      await takeTurn(tx, jobId);
      // A job deleted meanwhile has no row to hang events on.
      if (!(await tx.get('SELECT 1 FROM jobs WHERE id = ?', [jobId]))) {
        return;
      }
      // Progress through long silence comes without a segment.
      if (segment !== null) {
        const { id, start, end, text } = segment;
        await tx.run(`INSERT INTO job_events (job_id, type, data, created_at) VALUES (?, 'segment', ?, ?)`, [jobId, JSON.stringify({ id, start, end, text }), now]);
      }
      await tx.run(`INSERT INTO job_events (job_id, type, data, created_at) VALUES (?, 'progress', ?, ?)`, [
        jobId,
        JSON.stringify({ progress: percent, processed_seconds: Math.max(0, message.processedSeconds), duration_seconds: Math.max(0, message.durationSeconds) }),
        now,
      ]);
    });
    appended.emit('appended', jobId);
  };

  const onProgress = (jobId: string, message: ProgressMessage): void => {
    const write = (progressWrites.get(jobId) ?? Promise.resolve())
      .then(() => writeProgress(jobId, message))
      .catch(onError)
      .finally(() => {
        if (progressWrites.get(jobId) === write) {
          progressWrites.delete(jobId);
        }
      });
    progressWrites.set(jobId, write);
  };

  return {
    after: (jobId, afterSeq) => db.read.all<JobEventRow>('SELECT * FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq', [jobId, afterSeq]),
    syncStatus,
    progressStored,
    appended,
    watch(jobId, signal) {
      let pending = false;
      let wake: (() => void) | null = null;
      const onAppended = (id: string): void => {
        if (id === jobId) {
          pending = true;
          wake?.();
        }
      };
      const onAbort = (): void => wake?.();
      appended.on('appended', onAppended);
      signal.addEventListener('abort', onAbort, { once: true });
      return {
        async next(maxMs) {
          let quiet = false;
          if (!pending && !signal.aborted) {
            quiet = await new Promise<boolean>((resolve) => {
              const timer = setTimeout(() => resolve(true), maxMs);
              wake = () => {
                clearTimeout(timer);
                resolve(false);
              };
            });
            wake = null;
          }
          pending = false;
          return quiet;
        },
        close() {
          appended.off('appended', onAppended);
          signal.removeEventListener('abort', onAbort);
          wake?.();
        },
      };
    },
    start(events) {
      const sync = (jobId: string): void => void syncStatus(jobId).catch(onError);
      const handlers = {
        'job:claimed': (job: JobRow) => sync(job.id),
        'job:completed': sync,
        'job:failed': sync,
        'job:released': sync,
        'job:reaped': sync,
        'job:progress': onProgress,
      };
      for (const [name, handler] of Object.entries(handlers)) {
        const listener = handler as (...args: unknown[]) => void;
        events.on(name as keyof DispatcherEvents, listener);
        unsubscribe.push(() => events.off(name as keyof DispatcherEvents, listener));
      }
    },
    stop() {
      for (const off of unsubscribe.splice(0)) {
        off();
      }
    },
  };
}
