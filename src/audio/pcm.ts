/**
 * @module audio/pcm
 * The raw audio every job is normalized to and the speech engine reads: 16 kHz mono s16le. Reading it needs
 * nothing of ffmpeg or the engine, so both sides (and tests) share this module.
 */
import { createReadStream } from 'node:fs';

export const SAMPLE_RATE = 16_000;

/** Seconds of audio in a raw s16le file of `bytes` bytes. */
export function pcmDurationSeconds(bytes: number): number {
  return bytes / 2 / SAMPLE_RATE;
}

/** Yields the float samples of a raw s16le file in chunks of about one second, reading as it goes. */
export async function* pcmChunks(file: string): AsyncGenerator<Float32Array> {
  let carry: Buffer | null = null;
  for await (const piece of createReadStream(file, { highWaterMark: SAMPLE_RATE * 2 }) as AsyncIterable<Buffer>) {
    const bytes: Buffer = carry ? Buffer.concat([carry, piece]) : piece;
    const usable = bytes.length - (bytes.length % 2);
    carry = usable < bytes.length ? bytes.subarray(usable) : null;
    const samples = new Float32Array(usable / 2);
    for (let i = 0; i < samples.length; i++) {
      samples[i] = bytes.readInt16LE(i * 2) / 32768;
    }
    yield samples;
  }
}
