/**
 * @module clock
 * The time every component reads, so that tests can move it by hand.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
