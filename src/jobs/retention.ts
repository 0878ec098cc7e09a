/**
 * @module jobs/retention
 * Keeps disk use bounded: finished jobs, their transcripts and files are deleted once their retention ends, and
 * files that no job needs any more are removed: at start-up all of them (left by a killed server) when this node
 * is alone with its files, and at every sweep those old enough not to belong to an upload or a claim in progress
 * (left by a cleanup that failed, or by an API node killed mid-upload: the storage is listed, so an object in a
 * bucket is found like a file).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { UPLOADS_PREFIX } from '../storage/blob-store.ts';
import { jobPaths, removeJobFiles } from './job-files.ts';
import type { JobStore } from './job-store.ts';
import { removePath } from './remove-path.ts';

export interface RetentionOptions {
  store: JobStore;
  dataDir: string;
  blobs: BlobStore;
  clock: Clock;
  logger: Logger;
  defaultRetentionSeconds: number;
  /** How often expired jobs are looked for. */
  sweepIntervalMs?: number;
  /** Rows deleted per write, so that a large backlog never holds the write lock for long. */
  batchSize?: number;
  /**
   * A sweep leaves files younger than this: an upload being received has no job yet, and a job just claimed may
   * not show as processing in what the sweep read. Longer than any upload may stay quiet.
   */
  orphanMinAgeMs?: number;
  /**
   * Runs the deletion of expired jobs only where no other node runs it at the moment (a shared database); the
   * default runs it always.
   */
  exclusively?: <T>(name: string, fn: () => Promise<T>) => Promise<T | undefined>;
}

export interface RetentionSweeper {
  /** Deletes every job whose retention has ended, with its files; returns how many. */
  sweep(): Promise<number>;
  /**
   * Removes uploads and work directories of jobs that no longer need them, when last changed at least
   * `minAgeMs` ago. With 0 (at start-up, only when no other node shares the files) call it before claiming
   * starts and before the server listens.
   */
  removeOrphans(minAgeMs?: number): Promise<number>;
  start(): void;
  stop(): void;
}

const isUuid = (name: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(name);

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export function createRetentionSweeper(options: RetentionOptions): RetentionSweeper {
  const { store, dataDir, blobs, clock, logger, defaultRetentionSeconds } = options;
  const sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
  const batchSize = options.batchSize ?? 500;
  const orphanMinAgeMs = options.orphanMinAgeMs ?? 10 * 60_000;
  let filled = false;
  let sweeping: Promise<number> | null = null;
  let timer: NodeJS.Timeout | null = null;

  const exclusively = options.exclusively ?? (<T>(_name: string, fn: () => Promise<T>) => fn());
  const removeExpired = async (): Promise<number> => {
    if (!filled) {
      const count = await store.fillRetention(defaultRetentionSeconds);
      if (count > 0) {
        logger.info('jobs from before per-job retention given the default', { jobs: count, retention_seconds: defaultRetentionSeconds });
      }
      filled = true;
    }
    let total = 0;
    for (;;) {
      const removed = await store.removeExpired(clock.now(), batchSize);
      for (const job of removed) {
        // The row is gone already: an upload the storage could not remove now is left to the orphan pass.
        await removeJobFiles(dataDir, blobs, job.id).catch((error: unknown) => logger.warn('removing an expired job\'s files failed; the orphan sweep retries', { job_id: job.id, error }));
      }
      total += removed.length;
      if (removed.length < batchSize) {
        break;
      }
    }
    if (total > 0) {
      logger.info('expired jobs deleted', { jobs: total });
    }
    return total;
  };
  const sweepOnce = async (): Promise<number> => {
    const total = (await exclusively('retention', removeExpired)) ?? 0;
    // Every node has its own files: each removes its orphans.
    await sweeper.removeOrphans(orphanMinAgeMs);
    return total;
  };

  /** Whether the entry was last changed before `minAgeMs` ago (an entry gone meanwhile is not). */
  const oldEnough = async (file: string, minAgeMs: number): Promise<boolean> => {
    if (minAgeMs <= 0) {
      return true;
    }
    try {
      return (await stat(file)).mtimeMs <= Date.now() - minAgeMs;
    } catch {
      return false;
    }
  };

  const sweeper: RetentionSweeper = {
    sweep() {
      // One sweep at a time: the timer and a caller may ask together.
      sweeping ??= sweepOnce().finally(() => {
        sweeping = null;
      });
      return sweeping;
    },

    async removeOrphans(minAgeMs = 0) {
      /** Each upload's key by job id, with its newest write (an unfinished S3 upload of a key shows beside it). */
      const uploads = new Map<string, { key: string; lastModifiedMs: number }>();
      for await (const entry of blobs.list(UPLOADS_PREFIX)) {
        const id = entry.key.slice(UPLOADS_PREFIX.length);
        if (isUuid(id)) {
          const known = uploads.get(id);
          uploads.set(id, { key: entry.key, lastModifiedMs: Math.max(entry.lastModifiedMs, known?.lastModifiedMs ?? 0) });
        }
      }
      const work = (await entries(path.join(dataDir, 'work'))).filter(isUuid);
      const statuses = await store.statuses([...new Set([...uploads.keys(), ...work])]);
      let removed = 0;
      for (const [id, upload] of uploads) {
        const status = statuses.get(id);
        // A pending or running job still needs its upload (a retry decodes it again).
        if (status !== 'pending' && status !== 'processing' && (minAgeMs <= 0 || upload.lastModifiedMs <= Date.now() - minAgeMs)) {
          await blobs.remove(upload.key);
          removed++;
        }
      }
      for (const id of work) {
        if (statuses.get(id) !== 'processing' && (await oldEnough(jobPaths(dataDir, id).workDir, minAgeMs))) {
          await removePath(jobPaths(dataDir, id).workDir);
          removed++;
        }
      }
      if (removed > 0) {
        logger.info('files no job needs were removed', { files: removed, storage: blobs.location });
      }
      return removed;
    },

    start() {
      timer = setInterval(() => {
        sweeper.sweep().catch((error: unknown) => logger.error('retention sweep failed', { error }));
      }, sweepIntervalMs);
      timer.unref();
    },

    stop() {
      if (timer) {
        clearInterval(timer);
        timer = null;
      }
    },
  };
  return sweeper;
}
