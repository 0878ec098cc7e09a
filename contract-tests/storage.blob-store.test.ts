/**
 * The same conformance tests against both blob stores: local folders and an S3 bucket (moto). Bodies are larger
 * than two S3 parts, so the multipart path is the one exercised.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { after, before, describe, test } from 'node:test';

import { isAppError } from '../src/errors.ts';
import { loadConfig } from '../src/config.ts';
import type { BlobStore } from '../src/storage/blob-store.ts';
import { BlobNotFoundError, BlobTooLargeError } from '../src/storage/blob-store.ts';
import { createLocalBlobStore } from '../src/storage/local-blob-store.ts';
import { createS3BlobStore } from '../src/storage/s3-blob-store.ts';
import { tempDir } from './support/harness.ts';
import { MOTO, requireMoto, startS3Server } from './support/s3-server.ts';
import type { S3Server } from './support/s3-server.ts';

const MB = 1024 * 1024;

/** A body sent in 1 MiB chunks, as a slow network would; `stallAfter` bytes in, it stops sending (never ends). */
function body(bytes: Buffer, stallAfter = Infinity): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= stallAfter) {
        return;
      }
      if (offset >= bytes.length) {
        this.push(null);
        return;
      }
      this.push(bytes.subarray(offset, offset + MB));
      offset += MB;
    },
  });
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of store.list(prefix)) {
    found.push(entry.key);
  }
  return found.sort();
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

interface StoreUnderTest {
  store: BlobStore;
  /** Another store on the same backing (the same bucket under another prefix, or the same folder's parent). */
  neighbour: BlobStore;
  scratch: string;
  cleanup(): Promise<void>;
}

function blobStoreConformance(name: string, create: (t: TestContext) => Promise<StoreUnderTest | null>): void {
  describe(`${name} blob store`, () => {
    test('put, download, list and remove an object of several parts', async (t) => {
      const under = await create(t);
      if (!under) {
        return;
      }
      const { store, scratch } = under;
      try {
        const bytes = randomBytes(11 * MB + 123);
        const startedMs = Date.now();
        const { sizeBytes } = await store.put('uploads/one', body(bytes), { maxBytes: bytes.length, signal: new AbortController().signal });
        assert.equal(sizeBytes, bytes.length, 'the limit is inclusive');
        const listed = [];
        for await (const entry of store.list('uploads/')) {
          listed.push(entry);
        }
        assert.deepEqual(listed.map((entry) => entry.key), ['uploads/one']);
        assert.ok(Math.abs((listed[0]?.lastModifiedMs ?? 0) - startedMs) < 60_000, 'last-modified is the time of the put');
        const copy = path.join(scratch, 'copy');
        await store.download('uploads/one', copy, new AbortController().signal);
        assert.equal(sha(await readFile(copy)), sha(bytes));
        const local = store.localPath('uploads/one');
        if (local !== null) {
          assert.equal(sha(await readFile(local)), sha(bytes), 'a local path reads the object in place');
        }
        await store.remove('uploads/one');
        await store.remove('uploads/one');
        assert.deepEqual(await keys(store, 'uploads/'), []);
        await assert.rejects(store.download('uploads/one', copy, new AbortController().signal), BlobNotFoundError);
      } finally {
        await under.cleanup();
      }
    });

    test('a put past its limit fails and leaves nothing, not even an unfinished upload', async (t) => {
      const under = await create(t);
      if (!under) {
        return;
      }
      try {
        await assert.rejects(
          under.store.put('uploads/big', body(randomBytes(12 * MB)), { maxBytes: 7 * MB, signal: new AbortController().signal }),
          BlobTooLargeError,
        );
        assert.deepEqual(await keys(under.store, ''), []);
        await assert.rejects(under.store.put('uploads/big', body(randomBytes(MB + 1)), { maxBytes: MB, signal: new AbortController().signal }), BlobTooLargeError);
        assert.deepEqual(await keys(under.store, ''), []);
      } finally {
        await under.cleanup();
      }
    });

    test('an aborted put (a client gone mid-upload) or a failing body leaves nothing', async (t) => {
      const under = await create(t);
      if (!under) {
        return;
      }
      try {
        const controller = new AbortController();
        const stalled = under.store.put('uploads/gone', body(randomBytes(20 * MB), 8 * MB), { maxBytes: 100 * MB, signal: controller.signal });
        setTimeout(() => controller.abort(new Error('client went away')), 500);
        await assert.rejects(stalled, /client went away/);
        assert.deepEqual(await keys(under.store, ''), []);

        const failing = new Readable({ read() {} });
        failing.push(randomBytes(6 * MB));
        setTimeout(() => failing.destroy(new Error('socket reset')), 300);
        await assert.rejects(under.store.put('uploads/broken', failing, { maxBytes: 100 * MB, signal: new AbortController().signal }), /socket reset/);
        assert.deepEqual(await keys(under.store, ''), []);
      } finally {
        await under.cleanup();
      }
    });

    test('keys are listed by prefix, and a neighbour on the same backing sees none of them', async (t) => {
      const under = await create(t);
      if (!under) {
        return;
      }
      const { store, neighbour } = under;
      const signal = new AbortController().signal;
      try {
        for (const key of ['uploads/a', 'uploads/b', 'work/c', 'uploadsx/d']) {
          await store.put(key, body(Buffer.from(key)), { maxBytes: 100, signal });
        }
        await neighbour.put('uploads/n', body(Buffer.from('n')), { maxBytes: 100, signal });
        assert.deepEqual(await keys(store, 'uploads/'), ['uploads/a', 'uploads/b']);
        assert.deepEqual(await keys(store, 'work/'), ['work/c']);
        assert.deepEqual(await keys(neighbour, 'uploads/'), ['uploads/n']);
      } finally {
        await under.cleanup();
      }
    });
  });
}

blobStoreConformance('local', async () => {
  const dir = await tempDir('cesar-blobs-');
  // The data directory holds the database too: listing uploads must not wander into it.
  await writeFile(path.join(dir, 'cesar.db'), 'not an upload');
  return {
    store: createLocalBlobStore(path.join(dir, 'data')),
    neighbour: createLocalBlobStore(path.join(dir, 'other')),
    scratch: dir,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

let s3: S3Server | null = null;
const s3Store = (url: string, server: S3Server): BlobStore => {
  const { storage } = loadConfig({ CESAR_STORAGE_URL: url, ...server.env }, process.cwd());
  assert.ok(storage);
  return createS3BlobStore(storage);
};

describe('S3', () => {
  before(async () => {
    if (existsSync(MOTO)) {
      s3 = await startS3Server();
    }
  });
  after(async () => {
    await s3?.stop();
  });

  blobStoreConformance('S3 (moto)', async (t) => {
    if (!requireMoto(t) || !s3) {
      return null;
    }
    const url = await s3.createBucket('node-a');
    const dir = await tempDir('cesar-blobs-');
    const store = s3Store(url, s3);
    const neighbour = s3Store(url.replace(/node-a$/, 'node-b'), s3);
    return {
      store,
      neighbour,
      scratch: dir,
      async cleanup() {
        await store.close();
        await neighbour.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });

  test('an unreachable bucket is storage_unavailable, retryable, for every operation', async (t) => {
    if (!requireMoto(t) || !s3) {
      return;
    }
    const server = s3;
    const store = s3Store(await server.createBucket(), server);
    const dir = await tempDir('cesar-blobs-');
    const signal = new AbortController().signal;
    try {
      await store.put('uploads/kept', body(Buffer.from('kept')), { maxBytes: 100, signal });
      await server.pause();
      const unavailable = (error: unknown): boolean => isAppError(error) && error.code === 'storage_unavailable' && error.retryable;
      await assert.rejects(store.put('uploads/x', body(randomBytes(MB)), { maxBytes: 10 * MB, signal }), unavailable);
      await assert.rejects(store.download('uploads/kept', path.join(dir, 'f'), signal), unavailable);
      await assert.rejects(store.remove('uploads/kept'), unavailable);
      await assert.rejects(keys(store, 'uploads/'), unavailable);
      await server.resume();
      assert.deepEqual(await keys(store, 'uploads/'), ['uploads/kept'], 'back with its objects, and nothing of the failed put');
    } finally {
      await server.resume().catch(() => undefined);
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
