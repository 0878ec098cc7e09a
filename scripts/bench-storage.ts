/**
 * Upload and download throughput of the blob stores, with the memory an upload holds: the local store (the data
 * directory's disk) and the S3 store against moto on loopback (started here, as the tests do), in one run.
 *
 *   npm run bench:storage -- [--mb 100] [--rounds 3]
 *
 * Each round puts one file of random bytes through `BlobStore.put` from a file stream (as an upload arrives from
 * a socket), then downloads it with `BlobStore.download`; it prints MB/s of the best round and the largest rise
 * of this process's resident memory seen during the puts (sampled every 20 ms). Asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { startS3Server } from '../contract-tests/support/s3-server.ts';
import { loadConfig } from '../src/config.ts';
import type { BlobStore } from '../src/storage/blob-store.ts';
import { createLocalBlobStore } from '../src/storage/local-blob-store.ts';
import { createS3BlobStore } from '../src/storage/s3-blob-store.ts';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '100' }, rounds: { type: 'string', default: '3' } } });
const MB = 1024 * 1024;
const sizeBytes = Number(values.mb) * MB;
const rounds = Number(values.rounds);
const out = (line: string): boolean => process.stdout.write(`${line}\n`);

async function measure(name: string, store: BlobStore, source: string, scratch: string): Promise<void> {
  let bestUp = Infinity;
  let bestDown = Infinity;
  let peakRiseBytes = 0;
  for (let round = 0; round < rounds; round++) {
    const key = `uploads/bench-${round}`;
    const baseline = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peakRiseBytes = Math.max(peakRiseBytes, process.memoryUsage().rss - baseline);
    }, 20);
    let started = performance.now();
    await store.put(key, createReadStream(source, { highWaterMark: 64 * 1024 }), { maxBytes: sizeBytes, signal: new AbortController().signal });
    bestUp = Math.min(bestUp, performance.now() - started);
    clearInterval(sampler);
    started = performance.now();
    await store.download(key, path.join(scratch, 'copy'), new AbortController().signal);
    bestDown = Math.min(bestDown, performance.now() - started);
    await store.remove(key);
  }
  const rate = (ms: number): string => ((sizeBytes / MB / ms) * 1000).toFixed(0);
  out(`${name.padEnd(12)} put ${rate(bestUp)} MB/s   download ${rate(bestDown)} MB/s   rss rise during put <= ${(peakRiseBytes / MB).toFixed(0)} MB`);
}

const scratch = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-storage-'));
const source = path.join(scratch, 'source');
await writeFile(source, randomBytes(sizeBytes));
out(`${values.mb} MB file, best of ${rounds} rounds`);
const s3 = await startS3Server();
try {
  await measure('local', createLocalBlobStore(path.join(scratch, 'data')), source, scratch);
  const { storage } = loadConfig({ CESAR_STORAGE_URL: await s3.createBucket(), ...s3.env }, process.cwd());
  if (storage === null) {
    throw new Error('no storage');
  }
  const store = createS3BlobStore(storage);
  await measure('S3 (moto)', store, source, scratch);
  await store.close();
} finally {
  await s3.stop();
  await rm(scratch, { recursive: true, force: true });
}
