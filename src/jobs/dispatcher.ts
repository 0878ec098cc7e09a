/**
 * @module jobs/dispatcher
 * Takes jobs off the queue and runs them: normalize with ffmpeg, transcribe in the worker pool, store the
 * transcript. It holds each job by a lease that it renews while the job runs; a job whose lease lapses (the
 * server was killed, a heartbeat could not be written) goes back to the queue through the reaper, so an
 * accepted job is never lost, and a stale owner's late answer is fenced off by its token. Each attempt works in
 * its own directory of this node's data directory: the upload is read in place from local storage or fetched
 * from the bucket, a URL is downloaded there (never stored in the bucket: a retry downloads it again).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';

import type { Ffmpeg } from '../audio/ffmpeg.ts';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import { AppError, isAppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { MediaDownloader } from '../net/media-download.ts';
import type { ModelCatalog } from '../transcription/models.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { BlobNotFoundError, uploadKey } from '../storage/blob-store.ts';
import { checkModelRequest } from '../transcription/model-request.ts';
import type { ProgressMessage, TaskOutput } from '../transcription/task-messages.ts';
import type { TranscriptionPool } from '../transcription/worker-pool.ts';
import { jobPaths } from './job-files.ts';
import type { JobFailure, JobRow, JobStore } from './job-store.ts';
import { progressPercent } from './job-view.ts';
import { createProgressReporter } from './progress-reporter.ts';
import { removePath } from './remove-path.ts';

export interface DispatcherOptions {
  store: JobStore;
  pool: TranscriptionPool;
  ffmpeg: Ffmpeg;
  models: ModelCatalog;
  logger: Logger;
  dataDir: string;
  /** Where uploads are kept; a job's `input_path` is its key. */
  blobs: BlobStore;
  maxWorkers: number;
  leaseMs: number;
  clock?: Clock;
  /** How often to look for jobs whose retry time has come, besides being woken by new submissions. */
  pollIntervalMs?: number;
  /** Retry delay before jitter: `retryBaseMs * 2^(attempt-1)`, at most `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  random?: () => number;
  /** Fetches jobs submitted as a URL; without it such jobs fail with `download_failed`. */
  download?: MediaDownloader;
  /**
   * Resolves once what listeners of `job:progress` store for the job has landed. Awaited before the job's end is
   * stored: a reader on any node that sees the job ended must find its last segment already logged.
   */
  progressStored?: (jobId: string) => Promise<void>;
}

export interface DispatcherEvents {
  'job:claimed': [job: JobRow];
  'job:completed': [id: string];
  'job:failed': [id: string, failure: JobFailure, willRetry: boolean];
  'job:released': [id: string];
  'job:reaped': [id: string];
  /** A segment was decoded: its text and how far the job got. */
  'job:progress': [id: string, message: ProgressMessage];
}

export interface Dispatcher {
  readonly events: EventEmitter<DispatcherEvents>;
  start(): void;
  /** Wakes the claim loop (a job was just enqueued). */
  notify(): void;
  /** Aborts the job if this process runs it; its record has already been changed by the caller. */
  abortJob(id: string): boolean;
  /** Number of jobs running in this process. */
  readonly running: number;
  /** Stops claiming, lets running jobs finish within `graceMs`, then aborts and releases them. */
  stop(graceMs: number): Promise<void>;
}

type AbortReason = 'canceled' | 'shutdown' | 'lease_lost';

class JobAbort extends Error {
  readonly reason: AbortReason;
  constructor(reason: AbortReason) {
    super(`job aborted: ${reason}`);
    this.reason = reason;
  }
}

/** Exponential backoff with ±25 % jitter so that retries of many jobs do not arrive together. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.75 + random() * 0.5));
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { store, pool, ffmpeg, models, logger, dataDir, blobs, maxWorkers, leaseMs } = options;
  const clock = options.clock ?? systemClock;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const retryBaseMs = options.retryBaseMs ?? 5000;
  const retryMaxMs = options.retryMaxMs ?? 10 * 60_000;
  const random = options.random ?? Math.random;
  const instance = randomUUID().slice(0, 8);
  const events = new EventEmitter<DispatcherEvents>();
  const running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /**
   * Running jobs whose worker has started its last decode. Each lets one more job be claimed, so that its
   * download and ffmpeg run while that decode finishes and the worker goes straight on to it: otherwise every
   * worker sat idle between jobs through the database writes, the model check and two ffmpeg runs. A job is
   * only taken early when a worker is about to be free, so jobs beyond the workers stay pending.
   */
  const finishing = new Set<string>();
  /**
   * Jobs inside the pool, at most one per worker: a job prepared early waits here, not in the pool's queue, so
   * that "transcribing" in the log means a worker has it.
   */
  let transcribing = 0;
  const workerWaiters: (() => void)[] = [];
  const acquireWorker = async (signal: AbortSignal): Promise<void> => {
    if (transcribing < maxWorkers) {
      transcribing++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        workerWaiters.splice(workerWaiters.indexOf(granted), 1);
        reject(signal.reason as Error);
      };
      const granted = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      workerWaiters.push(granted);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
  const releaseWorker = (): void => {
    const next = workerWaiters.shift();
    if (next) {
      // The slot passes straight to the waiting job.
      next();
    } else {
      transcribing--;
    }
  };
  let accepting = false;
  let claiming = false;
  let wakeAgain = false;
  let pollTimer: NodeJS.Timeout | null = null;
  let reapTimer: NodeJS.Timeout | null = null;

  /** Once no attempt will read it again; a storage that cannot be reached leaves it to the orphan sweep. */
  const removeUpload = async (job: { id: string; input_path?: string }): Promise<void> => {
    try {
      await blobs.remove(job.input_path ?? uploadKey(job.id));
    } catch (error) {
      logger.warn('removing an upload failed; the orphan sweep retries', { job_id: job.id, error });
    }
  };

  /** The job's media as a local file for ffmpeg. */
  const fetchInput = async (job: JobRow, paths: ReturnType<typeof jobPaths>, signal: AbortSignal, log: Logger): Promise<string> => {
    if (job.source_url !== null) {
      if (!options.download) {
        throw new AppError('download_failed', 'This server does not download URLs.');
      }
      const { bytes } = await options.download(job.source_url, paths.input, signal);
      log.info('media downloaded', { size_bytes: bytes });
      return paths.input;
    }
    const inPlace = blobs.localPath(job.input_path);
    if (inPlace !== null) {
      return inPlace;
    }
    try {
      await blobs.download(job.input_path, paths.input, signal);
    } catch (error) {
      if (error instanceof BlobNotFoundError) {
        throw new AppError('internal_error', 'The upload is missing from the storage.', {}, { cause: error });
      }
      throw error;
    }
    return paths.input;
  };

  const reap = async (): Promise<void> => {
    try {
      for (const job of await store.reapExpired(clock.now())) {
        logger.warn('job lease expired; returned to the queue', { job_id: job.id, status: job.status });
        events.emit('job:reaped', job.id);
        if (job.status === 'failed') {
          // Attempts spent: no retry will read the upload again.
          await removeUpload(job);
        }
      }
    } catch (error) {
      logger.error('reaping expired leases failed', { error });
    }
  };

  const execute = async (job: JobRow, controller: AbortController): Promise<void> => {
    const owner = job.lease_owner ?? '';
    const log = logger.child({ job_id: job.id });
    const paths = jobPaths(dataDir, job.id);
    const { signal } = controller;
    let progress = { progress: 0, durationSeconds: job.duration_seconds };
    const heartbeat = async (): Promise<void> => {
      try {
        if (!(await store.heartbeat(job.id, owner, clock.now(), leaseMs, progress)) && !signal.aborted) {
          // Deleted, canceled or reaped: whoever holds the job now, it is not us.
          controller.abort(new JobAbort('lease_lost'));
        }
      } catch (error) {
        log.error('heartbeat failed', { error });
      }
    };
    const heartbeatTimer = setInterval(() => void heartbeat(), Math.max(100, Math.floor(leaseMs / 3)));
    log.info('job started', { attempt: job.attempts, model: job.model });
    const startedMs = clock.now();
    try {
      await mkdir(paths.workDir, { recursive: true });
      const scan = await models.scan();
      const model = scan.models.find((candidate) => candidate.name === job.model);
      if (!model) {
        throw new AppError('model_not_installed', `The model ${job.model} is not installed on this worker.`);
      }
      // An API node without models accepted the job on its name alone: what it could not check is checked here.
      const refused = checkModelRequest(model, { language: job.language, task: job.task });
      if (refused !== null) {
        throw new AppError(refused.code, refused.message);
      }
      if (job.timestamp_granularity === 'word' && !model.wordTimestamps) {
        throw new AppError('word_timestamps_unsupported', `The model ${model.name} has no alignment heads, so it cannot time words.`);
      }
      const input = await fetchInput(job, paths, signal, log);
      const audio = await ffmpeg.normalize(input, paths.audio, signal);
      progress = { progress: 0, durationSeconds: audio.durationSeconds };
      await store.recordMediaStart(job.id, owner, audio.startTimeSeconds);
      await heartbeat();
      await acquireWorker(signal);
      log.info('audio normalized; transcribing', { duration_seconds: audio.durationSeconds });
      const reporter = createProgressReporter(store, job.id, owner, clock, log);
      let output: TaskOutput;
      try {
        output = await pool.runMeasured(
          {
            pcmPath: paths.audio,
            model: { name: model.name, ...model.files, multilingual: model.multilingual, languages: model.languages, wordTimestamps: model.wordTimestamps },
            vadModel: scan.vadModel,
            language: job.language,
            task: job.task,
            wordTimestamps: job.timestamp_granularity !== 'segment' && model.wordTimestamps,
          },
          {
            signal,
            onLastDecode: () => {
              finishing.add(job.id);
              void claimLoop();
            },
            onProgress: (message) => {
              progress = { progress: progressPercent(message.processedSeconds, message.durationSeconds), durationSeconds: message.durationSeconds };
              events.emit('job:progress', job.id, message);
              reporter.report(progress.progress, message.processedSeconds);
            },
          },
        );
      } finally {
        releaseWorker();
      }
      const { transcript, recognizerMs, taskMs, decodedSeconds, decodes } = output;
      await reporter.settled();
      await options.progressStored?.(job.id);
      signal.throwIfAborted();
      if (await store.complete(job.id, owner, clock.now(), transcript)) {
        log.info('job completed', {
          duration_seconds: transcript.durationSeconds,
          segments: transcript.segments.length,
          elapsed_ms: clock.now() - startedMs,
          // Time inside the recognizer's decodes and in the worker's whole task: the rest of elapsed_ms is
          // what the service adds (ffmpeg, VAD, IPC, database).
          recognizer_ms: Math.round(recognizerMs),
          task_ms: Math.round(taskMs),
          decoded_seconds: Math.round(decodedSeconds * 100) / 100,
          decodes,
        });
        events.emit('job:completed', job.id);
        await removeUpload(job);
      } else {
        log.warn('job finished after its lease was lost; result dropped');
      }
    } catch (error) {
      await settleFailure(job, owner, error, signal, log);
    } finally {
      clearInterval(heartbeatTimer);
      await removePath(paths.workDir);
    }
  };

  const settleFailure = async (job: JobRow, owner: string, error: unknown, signal: AbortSignal, log: Logger): Promise<void> => {
    const abort = signal.aborted && signal.reason instanceof JobAbort ? signal.reason.reason : null;
    if (abort === 'shutdown') {
      if (await store.release(job.id, owner, clock.now())) {
        log.info('job released for the next start');
        events.emit('job:released', job.id);
      }
      return;
    }
    if (abort !== null) {
      log.info('job stopped', { reason: abort });
      return;
    }
    const appError = isAppError(error)
      ? error
      : new AppError('internal_error', 'An unexpected error stopped the job.', {}, { cause: error });
    if (!isAppError(error)) {
      log.error('job failed unexpectedly', { error });
    }
    const failure: JobFailure = { code: appError.code, message: appError.message };
    const willRetry = appError.retryable && job.attempts < job.max_attempts;
    const now = clock.now();
    const retryAt = willRetry ? now + retryDelayMs(job.attempts, retryBaseMs, retryMaxMs, random) : null;
    if (await store.fail(job.id, owner, now, failure, retryAt)) {
      log.warn(willRetry ? 'job attempt failed; will retry' : 'job failed', {
        code: failure.code,
        message: failure.message,
        ...(appError.cause instanceof Error ? { cause: appError.cause.message } : {}),
      });
      events.emit('job:failed', job.id, failure, willRetry);
      if (!willRetry) {
        await removeUpload(job);
      }
    }
  };

  /** The claim loop in progress, if any: `stop()` waits for it so that no claim lands after the database closes. */
  let claimRun: Promise<void> = Promise.resolve();
  const claimLoop = (): Promise<void> => {
    if (claiming) {
      wakeAgain = true;
      return claimRun;
    }
    claiming = true;
    claimRun = claimJobs();
    return claimRun;
  };
  const claimJobs = async (): Promise<void> => {
    try {
      do {
        wakeAgain = false;
        while (accepting && running.size < maxWorkers + finishing.size) {
          const owner = `${instance}:${randomUUID()}`;
          const job = await store.claim(owner, clock.now(), leaseMs);
          if (!job) {
            break;
          }
          if (!accepting) {
            // stop() began while this claim was in flight: give the job back rather than run it unobserved.
            await store.release(job.id, owner, clock.now());
            break;
          }
          events.emit('job:claimed', job);
          const controller = new AbortController();
          const done = execute(job, controller)
            // A write that fails while settling (disk full, database busy past its timeout) must not become an
            // unhandled rejection, which would end the server and every job in it; the lease brings the job back.
            .catch((error: unknown) => logger.error('settling a job failed', { job_id: job.id, error }))
            .finally(() => {
              running.delete(job.id);
              finishing.delete(job.id);
              void claimLoop();
            });
          running.set(job.id, { controller, done });
        }
      } while (wakeAgain && accepting);
    } catch (error) {
      logger.error('claiming jobs failed', { error });
    } finally {
      claiming = false;
    }
  };

  return {
    events,
    start() {
      accepting = true;
      void reap().then(claimLoop);
      pollTimer = setInterval(() => void claimLoop(), pollIntervalMs);
      reapTimer = setInterval(() => void reap(), Math.max(250, Math.floor(leaseMs / 2)));
    },
    notify() {
      void claimLoop();
    },
    abortJob(id) {
      const entry = running.get(id);
      if (!entry) {
        return false;
      }
      entry.controller.abort(new JobAbort('canceled'));
      return true;
    },
    get running() {
      return running.size;
    },
    async stop(graceMs) {
      accepting = false;
      for (const timer of [pollTimer, reapTimer]) {
        if (timer) {
          clearInterval(timer);
        }
      }
      await claimRun;
      const all = () => Promise.allSettled([...running.values()].map((entry) => entry.done));
      let graceTimer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace_over'>((resolve) => {
        graceTimer = setTimeout(() => resolve('grace_over'), graceMs);
      });
      const outcome = await Promise.race([all().then(() => 'finished' as const), graceOver]);
      clearTimeout(graceTimer);
      if (outcome === 'grace_over') {
        for (const entry of running.values()) {
          entry.controller.abort(new JobAbort('shutdown'));
        }
        await all();
      }
    },
  };
}
