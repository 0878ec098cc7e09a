/**
 * @module storage/local-blob-store
 * The embedded default: objects are files under the data directory, a key being the file's relative path, so
 * `uploads/<job id>` is where uploads have always been and existing data directories keep working.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { removePath } from '../jobs/remove-path.ts';
import { BlobNotFoundError } from './blob-store.ts';
import type { BlobEntry, BlobStore } from './blob-store.ts';
import { byteLimit } from './byte-limit.ts';

export function createLocalBlobStore(rootDir: string): BlobStore {
  const fileOf = (key: string): string => {
    const file = path.resolve(rootDir, ...key.split('/'));
    // Keys are ours (uploads/<uuid>), but a key must never reach outside the data directory.
    if (!file.startsWith(rootDir + path.sep)) {
      throw new Error(`the key ${JSON.stringify(key)} leaves the storage directory`);
    }
    return file;
  };

  async function* walk(dir: string): AsyncGenerator<string> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      const info = await stat(file).catch(() => null);
      if (info?.isDirectory()) {
        yield* walk(file);
      } else if (info) {
        yield file;
      }
    }
  }

  return {
    location: `local folders in ${rootDir}`,
    async put(key: string, body: Readable, { maxBytes, signal }) {
      const file = fileOf(key);
      await mkdir(path.dirname(file), { recursive: true });
      const limiter = byteLimit(maxBytes);
      try {
        // `wx`: an upload never lands on another one's file.
        await pipeline(body, limiter, createWriteStream(file, { flags: 'wx' }), { signal });
      } catch (error) {
        await removePath(file);
        // The caller's reason, not the pipeline's generic AbortError, as the S3 store does.
        throw signal.aborted ? signal.reason : error;
      }
      return { sizeBytes: limiter.bytes };
    },
    async download(key, file, signal) {
      try {
        await pipeline(createReadStream(fileOf(key)), createWriteStream(file), { signal });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new BlobNotFoundError(key);
        }
        throw error;
      }
    },
    localPath: fileOf,
    async remove(key) {
      await removePath(fileOf(key));
    },
    async *list(prefix): AsyncGenerator<BlobEntry> {
      // Only the folder the prefix names is walked: the data directory also holds the database and work files.
      const slash = prefix.lastIndexOf('/');
      const base = slash < 0 ? rootDir : fileOf(prefix.slice(0, slash));
      for await (const file of walk(base)) {
        const key = path.relative(rootDir, file).split(path.sep).join('/');
        if (!key.startsWith(prefix)) {
          continue;
        }
        const info = await stat(file).catch(() => null);
        if (info) {
          yield { key, lastModifiedMs: info.mtimeMs };
        }
      }
    },
    async close() {},
  };
}
