/**
 * @module storage/byte-limit
 * A pass-through stream that fails once more than `maxBytes` went through it, so a store never writes past the
 * limit whichever way its body arrives.
 */
import { Transform } from 'node:stream';

import { BlobTooLargeError } from './blob-store.ts';

export function byteLimit(maxBytes: number): Transform & { readonly bytes: number } {
  let bytes = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        callback(new BlobTooLargeError(maxBytes));
        return;
      }
      callback(null, chunk);
    },
  });
  return Object.defineProperty(limiter, 'bytes', { get: () => bytes }) as Transform & { readonly bytes: number };
}
