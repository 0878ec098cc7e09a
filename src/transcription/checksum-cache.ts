/**
 * @module transcription/checksum-cache
 * sha256 of model files, for `GET /models`. Hashing a 100 MB model takes a second, so it never happens on a
 * request: asking for a file's checksum starts hashing it in the background (one file at a time, streamed)
 * and answers null until it is done. Results are kept by path, size and modification time, so a replaced file
 * is hashed again and an unchanged one never is.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

import type { Logger } from '../logger.ts';

export interface FileChecksum {
  sizeBytes: number;
  /** Null while it is being computed, or when the file cannot be read. */
  sha256: string | null;
}

export interface ChecksumCache {
  /** The checksum when known; otherwise null, and hashing is queued. */
  lookup(file: string): Promise<FileChecksum>;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
  }
  return hash.digest('hex');
}

export function createChecksumCache(logger: Logger): ChecksumCache {
  const known = new Map<string, string>();
  const queued = new Set<string>();
  let queue: Promise<void> = Promise.resolve();

  return {
    async lookup(file) {
      let info;
      try {
        info = await stat(file);
      } catch {
        return { sizeBytes: 0, sha256: null };
      }
      const key = JSON.stringify([file, info.size, info.mtimeMs]);
      const sha256 = known.get(key);
      if (sha256 !== undefined) {
        return { sizeBytes: info.size, sha256 };
      }
      if (!queued.has(key)) {
        queued.add(key);
        queue = queue.then(async () => {
          try {
            known.set(key, await sha256Of(file));
          } catch (error) {
            logger.warn('hashing a model file failed', { file, error });
          } finally {
            queued.delete(key);
          }
        });
      }
      return { sizeBytes: info.size, sha256: null };
    },
  };
}
