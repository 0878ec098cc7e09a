/**
 * @module contract-tests/support/manual-clock
 * A clock that moves only when the test moves it: backoff, lease and retention tests advance time instead of
 * sleeping.
 */
import type { Clock } from '../../src/clock.ts';

export interface ManualClock extends Clock {
  advance(ms: number): void;
}

export function manualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}
