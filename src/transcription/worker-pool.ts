/**
 * @module transcription/worker-pool
 * A tinypool pool of child processes running `transcribe-task.ts`. Child processes, not threads: a native crash
 * of the speech engine must cost one job, not the server. The pool replaces a worker that died.
 */
import { Tinypool } from 'tinypool';

import { AppError, ERROR_CODES } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import type { ProgressMessage, TranscribeTaskInput } from './transcribe-task.ts';
import type { Transcript } from './transcript.ts';

export interface TranscriptionPool {
  run(input: TranscribeTaskInput, options: { signal: AbortSignal; onProgress: (message: ProgressMessage) => void }): Promise<Transcript>;
  /** Number of worker processes alive now. */
  readonly workerCount: number;
  destroy(): Promise<void>;
}

function isProgressMessage(value: unknown): value is ProgressMessage {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'cesar:progress';
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

export function createTranscriptionPool(options: { workers: number; env?: Record<string, string> }): TranscriptionPool {
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
  return {
    async run(input, { signal, onProgress }) {
      try {
        return (await pool.run(input, {
          signal,
          channel: {
            postMessage: (message: unknown) => {
              if (isProgressMessage(message)) {
                onProgress(message);
              }
            },
          },
        })) as Transcript;
      } catch (error) {
        throw toAppError(error, signal);
      }
    },
    get workerCount() {
      return pool.threads.length;
    },
    destroy: () => pool.destroy(),
  };
}
