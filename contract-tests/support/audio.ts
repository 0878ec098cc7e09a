/**
 * @module contract-tests/support/audio
 * Test audio made at test time with the bundled ffmpeg: generated signals (silence, tone, noise), long
 * recordings stitched from the committed fixtures, and looped speech that keeps a job running long enough to be
 * canceled, killed or shut down while it decodes; nothing big is committed.
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../../src/audio/ffmpeg.ts';
import { FIXTURES, tempDir } from './harness.ts';

const run = promisify(execFile);
const RATE = 16_000;

/** Encodes an ffmpeg lavfi source (e.g. `anullsrc`, `sine=frequency=440`) as FLAC and returns its bytes. */
export async function generated(source: string, seconds: number): Promise<Blob> {
  const dir = await tempDir('cesar-audio-');
  const file = path.join(dir, 'generated.flac');
  try {
    await run(bundledFfmpegPath(), ['-loglevel', 'error', '-f', 'lavfi', '-i', source, '-t', String(seconds), '-ac', '1', '-ar', String(RATE), file]);
    return new Blob([await readFile(file)]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A fixture as 16 kHz mono samples, with its leading silence removed so that speech starts at sample 0. */
export async function fixtureSamples(name: string): Promise<Int16Array> {
  const { stdout } = await run(
    bundledFfmpegPath(),
    ['-loglevel', 'error', '-i', path.join(FIXTURES, name), '-af', 'silenceremove=start_periods=1:start_threshold=-35dB', '-f', 's16le', '-ac', '1', '-ar', String(RATE), '-'],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return new Int16Array(stdout.buffer, stdout.byteOffset, stdout.length / 2);
}

export interface Placement {
  fixture: string;
  /** Where the speech of the fixture starts in the stitched audio, in seconds. */
  atSeconds: number;
}

/**
 * Silence of `totalSeconds` with each fixture's speech placed at its time, encoded as FLAC (silence compresses
 * to almost nothing, so a 20-minute upload stays small). The raw samples are written once to a temp file.
 */
export async function stitched(placements: readonly Placement[], totalSeconds: number): Promise<Blob> {
  const samples = new Int16Array(Math.round(totalSeconds * RATE));
  const clips = new Map<string, Int16Array>();
  for (const { fixture, atSeconds } of placements) {
    let clip = clips.get(fixture);
    if (!clip) {
      clip = await fixtureSamples(fixture);
      clips.set(fixture, clip);
    }
    samples.set(clip.subarray(0, samples.length - Math.round(atSeconds * RATE)), Math.round(atSeconds * RATE));
  }
  const dir = await tempDir('cesar-audio-');
  const raw = path.join(dir, 'stitched.pcm');
  const flac = path.join(dir, 'stitched.flac');
  try {
    await writeFile(raw, new Uint8Array(samples.buffer));
    await run(bundledFfmpegPath(), ['-loglevel', 'error', '-f', 's16le', '-ac', '1', '-ar', String(RATE), '-i', raw, flac]);
    return new Blob([await readFile(flac)]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Word error rate: word-level edit distance over the reference's length. */
export function wordErrorRate(reference: readonly string[], hypothesis: readonly string[]): { errors: number; words: number } {
  let previous = Array.from({ length: hypothesis.length + 1 }, (_, j) => j);
  for (let i = 1; i <= reference.length; i++) {
    const current = [i];
    for (let j = 1; j <= hypothesis.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (reference[i - 1] === hypothesis[j - 1] ? 0 : 1);
      current.push(Math.min(substitution, (previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1));
    }
    previous = current;
  }
  return { errors: previous[hypothesis.length] ?? 0, words: reference.length };
}

/** jfk.ogg (11 s) played `loops` times in a row, as ogg bytes (built in a temporary directory, then removed). */
export async function loopedJfk(loops: number): Promise<{ blob: Blob }> {
  const dir = await tempDir('cesar-audio-');
  try {
    const file = path.join(dir, `jfk-x${loops}.ogg`);
    await run(bundledFfmpegPath(), ['-loglevel', 'error', '-stream_loop', String(loops - 1), '-i', path.join(FIXTURES, 'jfk.ogg'), '-c', 'copy', file]);
    return { blob: new Blob([await readFile(file)]) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
