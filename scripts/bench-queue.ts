/**
 * Queue benchmark: durable enqueue and claim throughput, and `GET /jobs` latency, on a database holding
 * 100,000 jobs (`BENCH_ROWS` to change). Prints numbers; judges nothing.
 *
 *   node scripts/bench-queue.ts
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { createApiKeyVerifier } from '../src/http/api-keys.ts';
import { createApp } from '../src/http/app.ts';
import { createIdempotencyStore } from '../src/jobs/idempotency-store.ts';
import { createJobEventLog } from '../src/jobs/job-events.ts';
import { openDatabase } from '../src/jobs/database.ts';
import { systemClock } from '../src/clock.ts';
import { createJobStore } from '../src/jobs/job-store.ts';
import type { NewJob } from '../src/jobs/job-store.ts';
import { silentLogger } from '../src/logger.ts';
import { createUrlPolicy } from '../src/net/url-policy.ts';
import { createChecksumCache } from '../src/transcription/checksum-cache.ts';
import { createLocalBlobStore } from '../src/storage/local-blob-store.ts';
import { createModelCatalog } from '../src/transcription/models.ts';
import { createWebhookTarget } from '../src/webhooks/webhook-target.ts';
import { createWebhooks } from '../src/webhooks/webhooks.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const ENQUEUES = 2000;
const CLAIMS = 2000;
const REQUESTS = 300;

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function newJob(): NewJob {
  const id = randomUUID();
  return { id, model: 'tiny.en', language: null, task: 'transcribe', fileName: 'bench.ogg', inputPath: `uploads/${id}`, maxAttempts: 3, retentionSeconds: 86_400 };
}

function percentiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  return `p50 ${at(50).toFixed(2)} ms, p95 ${at(95).toFixed(2)} ms, p99 ${at(99).toFixed(2)} ms, max ${at(100).toFixed(2)} ms`;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-'));
const db = await openDatabase(path.join(dir, 'cesar.db'));
const store = createJobStore(db);
try {
  out(`cesar queue benchmark: ${ROWS} rows, SQLite ${(await db.settings()).sqliteVersion}, synchronous=FULL, WAL`);

  // Fill: half finished (as an API with retention holds), half pending. One transaction: the fill is set-up.
  const fillStart = performance.now();
  const now = Date.now();
  await db.transaction(async (tx) => {
    for (let i = 0; i < ROWS; i++) {
      const job = newJob();
      const finished = i % 2 === 0;
      const status = finished ? (['completed', 'failed', 'canceled'] as const)[i % 3] : 'pending';
      await tx.run(
        `INSERT INTO jobs (id, status, model, language, task, file_name, input_path, max_attempts, run_at, created_at, updated_at,
                           completed_at, retention_seconds, attempts)
         VALUES (?, ?, ?, NULL, 'transcribe', ?, ?, 3, ?, ?, ?, ?, 86400, ?)`,
        [job.id, status ?? 'completed', job.model, job.fileName, job.inputPath, now + i, now + i, now + i, finished ? now + i : null, finished ? 1 : 0],
      );
    }
  });
  out(`fill: ${ROWS} rows in one transaction in ${((performance.now() - fillStart) / 1000).toFixed(1)} s`);

  // Enqueue as POST /jobs does it: one durable commit per job.
  let start = performance.now();
  for (let i = 0; i < ENQUEUES; i++) {
    await store.enqueue(newJob(), Date.now());
  }
  let seconds = (performance.now() - start) / 1000;
  out(`enqueue, one at a time: ${ENQUEUES} in ${seconds.toFixed(2)} s = ${(ENQUEUES / seconds).toFixed(0)} jobs/s`);

  start = performance.now();
  await Promise.all(Array.from({ length: ENQUEUES }, () => store.enqueue(newJob(), Date.now())));
  seconds = (performance.now() - start) / 1000;
  out(`enqueue, ${ENQUEUES} submitted at once: ${(ENQUEUES / seconds).toFixed(0)} jobs/s (writes are serialized; each commits)`);

  const countSamples: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await store.pendingCount(10_000);
    countSamples.push(performance.now() - t);
  }
  out(`pending count up to the default limit of 10,000 (backpressure check on each POST /jobs, ${await store.pendingCount(1e9)} pending): ${percentiles(countSamples)}`);

  start = performance.now();
  const claimSamples: number[] = [];
  for (let i = 0; i < CLAIMS; i++) {
    const t = performance.now();
    const job = await store.claim(`bench-${i}`, Date.now(), 60_000);
    claimSamples.push(performance.now() - t);
    if (!job) {
      throw new Error('the queue ran dry');
    }
  }
  seconds = (performance.now() - start) / 1000;
  out(`claim, one at a time: ${CLAIMS} in ${seconds.toFixed(2)} s = ${(CLAIMS / seconds).toFixed(0)} claims/s (${percentiles(claimSamples)})`);

  start = performance.now();
  const racers = await Promise.all([1, 2, 3, 4].map(() => openDatabase(path.join(dir, 'cesar.db'))));
  let claimed = 0;
  await Promise.all(
    racers.map(async (racer, index) => {
      const racerStore = createJobStore(racer);
      for (let i = 0; i < CLAIMS / 4; i++) {
        if (await racerStore.claim(`racer-${index}-${i}`, Date.now(), 60_000)) {
          claimed++;
        }
      }
    }),
  );
  seconds = (performance.now() - start) / 1000;
  await Promise.all(racers.map((racer) => racer.close()));
  out(`claim, 4 connections racing: ${claimed} in ${seconds.toFixed(2)} s = ${(claimed / seconds).toFixed(0)} claims/s`);

  const urlPolicy = createUrlPolicy({ allowPrivateNetworks: false, allowedPorts: new Set([80, 443]) });
  const app = await createApp({
    store,
    dispatcher: { notify: () => undefined, abortJob: () => false },
    models: createModelCatalog(path.join(dir, 'no-models')),
    logger: silentLogger,
    clock: systemClock,
    dataDir: dir,
    blobs: createLocalBlobStore(dir),
    role: 'all',
    defaultModel: 'tiny.en',
    maxAttempts: 3,
    maxUploadBytes: 1024 * 1024,
    uploadIdleTimeoutMs: 15_000,
    maxConcurrentUploads: 32,
    urlPolicy,
    retentionSeconds: 86_400,
    maxPendingJobs: 1_000_000,
    workers: { workers: () => [], recycled: 0 },
    checksums: createChecksumCache(silentLogger),
    modelDownload: () => null,
    openAIWaitSeconds: 120,
    startedMs: Date.now(),
    apiKeys: createApiKeyVerifier([]),
    idempotency: createIdempotencyStore(db),
    idempotencyTtlSeconds: 86_400,
    jobEvents: createJobEventLog(db, systemClock, () => undefined),
    webhooks: createWebhooks({
      db,
      target: createWebhookTarget(urlPolicy),
      clock: systemClock,
      logger: silentLogger,
      settings: { defaultUrl: null, secrets: [], retryBaseMs: 5000, retryMaxMs: 60_000, maxAttempts: 3, timeoutMs: 15_000 },
    }),
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const some = await store.list({ limit: 1, offset: Math.floor(ROWS / 2) });
  const cursorPage = (await (await fetch(`${base}/jobs?limit=100&offset=${Math.floor(ROWS / 2)}`)).json()) as { next_cursor: string | null };
  const cases: [string, string][] = [
    ['GET /jobs (first page of 20)', '/jobs'],
    ['GET /jobs?limit=100', '/jobs?limit=100'],
    ['GET /jobs?status=completed', '/jobs?status=completed'],
    ['GET /jobs?status=pending', '/jobs?status=pending'],
    ['GET /jobs?cursor=<mid-table>&limit=100', `/jobs?limit=100&cursor=${cursorPage.next_cursor ?? ''}`],
    [`GET /jobs?offset=${Math.floor(ROWS / 2)}`, `/jobs?offset=${Math.floor(ROWS / 2)}`],
    ['GET /jobs/{id}', `/jobs/${some[0]?.id ?? ''}`],
  ];
  for (const [name, url] of cases) {
    for (let i = 0; i < 20; i++) {
      await (await fetch(`${base}${url}`)).arrayBuffer();
    }
    const samples: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const t = performance.now();
      const response = await fetch(`${base}${url}`);
      await response.arrayBuffer();
      samples.push(performance.now() - t);
      if (response.status !== 200) {
        throw new Error(`${name}: ${response.status}`);
      }
    }
    out(`${name}: ${percentiles(samples)} (${REQUESTS} sequential requests)`);
  }
  server.close();
  server.closeAllConnections();
} finally {
  await db.close();
  await rm(dir, { recursive: true, force: true });
}
