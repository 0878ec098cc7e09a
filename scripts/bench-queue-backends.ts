/**
 * Queue benchmark of both backends in one run: enqueue and claim throughput and enqueue-to-pickup latency, each
 * on a database holding 100,000 jobs (`BENCH_ROWS` to change; half finished, half pending), SQLite with its
 * own claim SQL beside PostgreSQL with the queue on pg-boss. Prints numbers; judges nothing.
 *
 *   node scripts/bench-queue-backends.ts
 *
 * PostgreSQL: `BENCH_DATABASE_URL` (a database it may fill), else a throwaway server started as the tests do
 * (initdb on PATH; fsync off, so its commits are cheaper than a production server's).
 * Pickup latency: the claimer of SQLite is woken in-process (as the dispatcher is by the HTTP handler); that of
 * PostgreSQL is another connection set (another node) woken by the NOTIFY of the enqueue's commit.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { startPostgres } from '../contract-tests/support/postgres.ts';
import type { TestPostgres } from '../contract-tests/support/postgres.ts';
import { openDatabase } from '../src/jobs/database.ts';
import type { Database } from '../src/jobs/database.ts';
import { createJobStore, INTERACTIVE_PRIORITY } from '../src/jobs/job-store.ts';
import type { JobStore, NewJob } from '../src/jobs/job-store.ts';
import { silentLogger } from '../src/logger.ts';
import { openPostgres } from '../src/postgres/database.ts';
import { createPostgresJobStore, QUEUE } from '../src/postgres/job-store.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const ENQUEUES = Number(process.env.BENCH_ENQUEUES ?? 1000);
const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 1000);
const PICKUPS = Number(process.env.BENCH_PICKUPS ?? 200);
const LEASE_MS = 30_000;

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function newJob(priority: 0 | 1 = 0): NewJob {
  const id = randomUUID();
  return { id, model: 'tiny.en', language: null, task: 'transcribe', fileName: 'bench.ogg', inputPath: `uploads/${id}`, maxAttempts: 3, retentionSeconds: 86_400, priority };
}

function percentiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  return `p50 ${at(50).toFixed(2)} ms, p99 ${at(99).toFixed(2)} ms, max ${at(100).toFixed(2)} ms`;
}

interface Backend {
  name: string;
  db: Database;
  store: JobStore;
  /** Puts `pending` job ids in the queue beside their rows (pg-boss's side; nothing on SQLite). */
  queuePending(ids: string[]): Promise<void>;
  /** A claimer for pickups, and how it is woken when a job is enqueued. */
  claimer: JobStore;
  onEnqueued(listener: () => void): void;
  /** Wakes the claimer of an in-process queue after an enqueue (PostgreSQL's NOTIFY does it by itself). */
  enqueued(): void;
  close(): Promise<void>;
}

async function fill(backend: Backend): Promise<void> {
  const started = performance.now();
  const now = Date.now();
  const pending: string[] = [];
  const batch = 1000;
  for (let offset = 0; offset < ROWS; offset += batch) {
    const values: string[] = [];
    const params: (string | number | null)[] = [];
    for (let i = offset; i < Math.min(ROWS, offset + batch); i++) {
      const job = newJob();
      const finished = i % 2 === 0;
      const status = finished ? (['completed', 'failed', 'canceled'] as const)[i % 3] ?? 'completed' : 'pending';
      if (!finished) {
        pending.push(job.id);
      }
      values.push(`(?, ?, ?, NULL, 'transcribe', ?, ?, 3, ?, ?, ?, ?, 86400, ?)`);
      params.push(job.id, status, job.model, job.fileName, job.inputPath, now + i, now + i, now + i, finished ? now + i : null, finished ? 1 : 0);
    }
    await backend.db.write(
      `INSERT INTO jobs (id, status, model, language, task, file_name, input_path, max_attempts, run_at, created_at, updated_at,
                         completed_at, retention_seconds, attempts) VALUES ${values.join(', ')}`,
      params,
    );
  }
  await backend.queuePending(pending);
  out(`  fill: ${ROWS} rows (${pending.length} pending) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function measure(backend: Backend): Promise<void> {
  out(`${backend.name}`);
  await fill(backend);
  const { store } = backend;

  let start = performance.now();
  for (let i = 0; i < ENQUEUES; i++) {
    await store.enqueue(newJob(), Date.now());
  }
  let seconds = (performance.now() - start) / 1000;
  out(`  enqueue, one at a time: ${(ENQUEUES / seconds).toFixed(0)} jobs/s`);
  start = performance.now();
  await Promise.all(Array.from({ length: ENQUEUES }, () => store.enqueue(newJob(), Date.now())));
  seconds = (performance.now() - start) / 1000;
  out(`  enqueue, ${ENQUEUES} at once: ${(ENQUEUES / seconds).toFixed(0)} jobs/s`);

  // Every claim must find a job (the backlog is far larger): counted, so that a claim of nothing cannot pass for speed.
  let claimed = 0;
  const claimOne = async (): Promise<void> => {
    const job = await store.claim('bench', Date.now(), LEASE_MS);
    claimed += job ? 1 : 0;
  };
  start = performance.now();
  for (let i = 0; i < CLAIMS; i++) {
    await claimOne();
  }
  seconds = (performance.now() - start) / 1000;
  out(`  claim, one at a time: ${(CLAIMS / seconds).toFixed(0)} jobs/s (${claimed} claimed)`);
  claimed = 0;
  start = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < CLAIMS / 4; i++) {
        await claimOne();
      }
    }),
  );
  seconds = (performance.now() - start) / 1000;
  out(`  claim, 4 claimers: ${(CLAIMS / seconds).toFixed(0)} jobs/s (${claimed} claimed)`);

  // Pickup: an interactive job (ahead of the whole pending backlog), from the start of its enqueue to the end of
  // the claim that a wake-up triggered, one job at a time.
  const samples: number[] = [];
  for (let i = 0; i < PICKUPS; i++) {
    const job = newJob(INTERACTIVE_PRIORITY);
    const picked = new Promise<number>((resolve, reject) => {
      let claiming = false;
      backend.onEnqueued(() => {
        if (claiming) {
          return;
        }
        claiming = true;
        backend.claimer.claim('picker', Date.now(), LEASE_MS).then((row) => {
          if (row?.id === job.id) {
            resolve(performance.now());
          } else {
            claiming = false;
          }
        }, reject);
      });
    });
    const enqueuedAt = performance.now();
    await store.enqueue(job, Date.now());
    backend.enqueued();
    samples.push((await picked) - enqueuedAt);
  }
  out(`  enqueue-to-pickup (${PICKUPS} jobs): ${percentiles(samples)}`);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-'));
let server: TestPostgres | null = null;
const backends: Backend[] = [];
try {
  const sqlite = await openDatabase(path.join(dir, 'cesar.db'));
  let sqliteListener: (() => void) | null = null;
  const sqliteStore = createJobStore(sqlite);
  backends.push({
    name: `SQLite ${(await sqlite.settings()).sqliteVersion} (synchronous=FULL, WAL), own claim SQL`,
    db: sqlite,
    store: sqliteStore,
    queuePending: () => Promise.resolve(),
    claimer: sqliteStore,
    onEnqueued: (listener) => void (sqliteListener = listener),
    enqueued: () => sqliteListener?.(),
    close: () => sqlite.close(),
  });

  let url = process.env.BENCH_DATABASE_URL;
  if (!url) {
    server = await startPostgres();
    url = await server.createDatabase();
  }
  const pgDb = await openPostgres({ url, logger: silentLogger });
  const pgStore = await createPostgresJobStore({ db: pgDb, url, logger: silentLogger, leaseMs: LEASE_MS, retryBaseMs: 5000, retryMaxMs: 600_000 });
  const otherDb = await openPostgres({ url, logger: silentLogger });
  const otherNode = await createPostgresJobStore({ db: otherDb, url, logger: silentLogger, leaseMs: LEASE_MS, retryBaseMs: 5000, retryMaxMs: 600_000 });
  let pgListener: (() => void) | null = null;
  otherNode.subscribe(() => pgListener?.());
  const version = (await pgDb.read.get<{ v: string }>("SELECT current_setting('server_version') AS v"))?.v ?? '?';
  backends.push({
    name: `PostgreSQL ${version}${process.env.BENCH_DATABASE_URL ? '' : ' (throwaway, fsync=off)'}, queue on pg-boss 12`,
    db: pgDb,
    store: pgStore,
    async queuePending(ids) {
      // pg-boss's side of the pending rows, as enqueue() writes it, in bulk.
      for (let offset = 0; offset < ids.length; offset += 5000) {
        await pgDb.write(
          `INSERT INTO pgboss.job (id, name, data, priority, retry_limit, heartbeat_seconds, expire_seconds)
           SELECT id::uuid, ?, '{}'::jsonb, 0, 2, 30, 86400 FROM unnest(?::text[]) AS id`,
          [QUEUE, `{${ids.slice(offset, offset + 5000).join(',')}}`],
        );
      }
    },
    claimer: otherNode,
    onEnqueued: (listener) => void (pgListener = listener),
    enqueued: () => undefined,
    async close() {
      await otherNode.close();
      await otherDb.close();
      await pgStore.close();
      await pgDb.close();
    },
  });

  out(`cesar queue backends benchmark: ${ROWS} rows each, ${os.cpus().length} cores`);
  for (const backend of backends) {
    await measure(backend);
  }
} finally {
  for (const backend of backends) {
    await backend.close();
  }
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
}
