/**
 * @module contract-tests/support/audio
 * Longer recordings built at test time from the committed fixture, so that a job stays running long enough to
 * be canceled, killed or shut down while it decodes.
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../../src/audio/ffmpeg.ts';
import { FIXTURES, tempDir } from './harness.ts';

/** jfk.ogg (11 s) played `loops` times in a row, as ogg bytes (built in a temporary directory, then removed). */
export async function loopedJfk(loops: number): Promise<{ blob: Blob }> {
  const dir = await tempDir('cesar-audio-');
  try {
    const file = path.join(dir, `jfk-x${loops}.ogg`);
    await promisify(execFile)(bundledFfmpegPath(), ['-loglevel', 'error', '-stream_loop', String(loops - 1), '-i', path.join(FIXTURES, 'jfk.ogg'), '-c', 'copy', file]);
    return { blob: new Blob([await readFile(file)]) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
