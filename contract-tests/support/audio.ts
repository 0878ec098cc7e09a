/**
 * @module contract-tests/support/audio
 * Longer recordings built at test time from the committed fixture, so that a job stays running long enough to
 * be canceled, killed or shut down while it decodes.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../../src/audio/ffmpeg.ts';
import { FIXTURES, tempDir } from './harness.ts';

/** jfk.ogg (11 s) played `loops` times in a row, as an ogg file on disk. */
export async function loopedJfk(loops: number): Promise<{ file: string; blob: Blob }> {
  const file = path.join(await tempDir('cesar-audio-'), `jfk-x${loops}.ogg`);
  await promisify(execFile)(bundledFfmpegPath(), ['-loglevel', 'error', '-stream_loop', String(loops - 1), '-i', path.join(FIXTURES, 'jfk.ogg'), '-c', 'copy', file]);
  return { file, blob: new Blob([await readFile(file)]) };
}
