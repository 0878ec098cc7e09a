/**
 * @module jobs/progress-reporter
 * Writes a running job's progress as each decoded window arrives, so `progress`, `speed` and the time left
 * move with the audio rather than with the lease heartbeat. Writes never queue up: while one is in flight only
 * the newest values wait, and they are written when it lands.
 */
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { JobStore, TranscriptionProgress } from './job-store.ts';

export interface ProgressReporter {
  /** `progress` in percent; `processedSeconds` of audio transcribed since the transcription started. */
  report(progress: number, processedSeconds: number): void;
  /** Resolves when the last report is written. */
  settled(): Promise<void>;
}

export function createProgressReporter(store: JobStore, id: string, owner: string, clock: Clock, log: Logger): ProgressReporter {
  const startedMs = clock.now();
  let next: TranscriptionProgress | null = null;
  let writing: Promise<void> | null = null;

  const write = async (): Promise<void> => {
    while (next !== null) {
      const values = next;
      next = null;
      try {
        await store.recordProgress(id, owner, clock.now(), values);
      } catch (error) {
        log.warn('recording progress failed', { error });
      }
    }
    writing = null;
  };

  return {
    report(progress, processedSeconds) {
      const elapsedSeconds = (clock.now() - startedMs) / 1000;
      next = { progress, processedSeconds, speed: elapsedSeconds > 0 && processedSeconds > 0 ? processedSeconds / elapsedSeconds : null };
      writing ??= write();
    },
    async settled() {
      await writing;
    },
  };
}
