/**
 * @module transcription/worker-pool
 * A tinypool pool of child processes running `transcribe-task.ts`. Child processes, not threads: a native crash
 * of the speech engine must cost one job, not the server. The pool replaces a worker that died.
 */
import { Tinypool } from 'tinypool';

import { AppError, ERROR_CODES } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import { isLastDecodeMessage, isProgressMessage } from './task-messages.ts';
import type { ProgressMessage, TaskOutput, TranscribeTaskInput, WorkerReport } from './task-messages.ts';
import type { Transcript } from '../transcripts/transcript.ts';

export interface RunOptions {
  signal: AbortSignal;
  onProgress: (message: ProgressMessage) => void;
  /** The worker has read all the audio and started its last decode: it will be free soon. */
  onLastDecode?: () => void;
}

export interface TranscriptionPool {
  run(input: TranscribeTaskInput, options: RunOptions): Promise<Transcript>;
  /** Like `run`, with the worker's own timings (for benchmarks). */
  runMeasured(input: TranscribeTaskInput, options: RunOptions): Promise<TaskOutput>;
  /** The last report of each live worker process. */
  workers(): WorkerReport[];
  /** How many times the workers were renewed because of a job count or memory bound since the pool started. */
  readonly recycled: number;
  destroy(): Promise<void>;
}

export interface RecyclePolicy {
  /** Replace a worker process after it has run this many jobs (0: never). */
  maxJobs: number;
  /** Replace a worker process once its resident memory passes this (0: never). */
  maxRssBytes: number;
}

/** Turns what tinypool rejects with (a serialized child error, a crash, an abort) into an AppError. */
function toAppError(error: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) {
    return signal.reason;
  }
  const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && code in ERROR_CODES) {
    return new AppError(code as ErrorCode, typeof message === 'string' ? message : undefined);
  }
  if (typeof message === 'string' && /exited unexpectedly/i.test(message)) {
    return new AppError('worker_crashed', 'The worker process died while transcribing.');
  }
  return new AppError('transcription_failed', 'The speech engine failed on this audio.', {}, { cause: error });
}

export function createTranscriptionPool(options: { workers: number; env?: Record<string, string>; recycle?: RecyclePolicy }): TranscriptionPool {
  const recycle = options.recycle ?? { maxJobs: 0, maxRssBytes: 0 };
  const reports = new Map<number, WorkerReport>();
  let recycled = 0;
  let recycling: Promise<void> | null = null;
  const livePids = (): Set<number> => new Set(pool.threads.map((worker) => (worker as unknown as { threadId: number }).threadId));
  const remember = (report: WorkerReport): void => {
    reports.set(report.pid, report);
  };
  /**
   * The ONNX runtime never gives memory back, so a worker is replaced at a job boundary once it has done its
   * share of jobs or grown past the memory bound. tinypool can only recycle the whole pool (idle workers at
   * once, busy ones after their current job), so every worker is renewed together; none is interrupted, and
   * reloading a model takes well under a second. tinypool's own memory limit reads the V8 heap, which does not
   * see the runtime's native arenas; the worker's RSS does.
   */
  const maybeRecycle = (report: WorkerReport): void => {
    const tooManyJobs = recycle.maxJobs > 0 && report.jobs >= recycle.maxJobs;
    const tooBig = recycle.maxRssBytes > 0 && report.rssBytes >= recycle.maxRssBytes;
    if ((tooManyJobs || tooBig) && recycling === null) {
      recycled++;
      recycling = pool
        .recycleWorkers()
        .catch(() => {})
        .finally(() => {
          recycling = null;
        });
    }
  };
  const pool = new Tinypool({
    filename: new URL('./transcribe-task.ts', import.meta.url).href,
    runtime: 'child_process',
    minThreads: options.workers,
    maxThreads: options.workers,
    concurrentTasksPerWorker: 1,
    isolateWorkers: false,
    // Not the parent's flags: under `node --test` a worker would otherwise run as a test file.
    execArgv: [],
    // tinypool forks with only the env it is given.
    env: options.env ?? Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined)),
  });
  // A worker that exits between jobs (killed from outside) is replaced by tinypool, which reports it here.
  pool.on('error', () => {});
  const runMeasured: TranscriptionPool['runMeasured'] = async (input, { signal, onProgress, onLastDecode }) => {
    let output: TaskOutput;
    try {
      output = (await pool.run(input, {
        signal,
        channel: {
          postMessage: (message: unknown) => {
            if (isProgressMessage(message)) {
              remember(message.worker);
              onProgress(message);
            } else if (isLastDecodeMessage(message)) {
              onLastDecode?.();
            }
          },
        },
      })) as TaskOutput;
    } catch (error) {
      throw toAppError(error, signal);
    }
    remember(output.worker);
    maybeRecycle(output.worker);
    return output;
  };
  return {
    runMeasured,
    async run(input, options) {
      return (await runMeasured(input, options)).transcript;
    },
    workers() {
      const live = livePids();
      for (const pid of reports.keys()) {
        if (!live.has(pid)) {
          reports.delete(pid);
        }
      }
      return [...reports.values()];
    },
    get recycled() {
      return recycled;
    },
    destroy: () => pool.destroy(),
  };
}
