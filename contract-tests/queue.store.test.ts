import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { openDatabase } from '../src/jobs/database.ts';
import type { Database } from '../src/jobs/database.ts';
import { retryDelayMs } from '../src/jobs/dispatcher.ts';
import { jobPaths } from '../src/jobs/job-files.ts';
import { createJobStore, INTERACTIVE_PRIORITY } from '../src/jobs/job-store.ts';
import type { JobStore, NewJob } from '../src/jobs/job-store.ts';
import { createRetentionSweeper } from '../src/jobs/retention.ts';
import { silentLogger } from '../src/logger.ts';
import { createLocalBlobStore } from '../src/storage/local-blob-store.ts';
import type { Transcript } from '../src/transcripts/transcript.ts';
import { tempDir } from './support/harness.ts';

const T0 = Date.UTC(2026, 0, 1);
const LEASE_MS = 1000;

/** A clock that moves only when the test moves it. */
function manualClock(start = T0): { now(): number; advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => void (now += ms) };
}

function newJob(overrides: Partial<NewJob> = {}): NewJob {
  const id = randomUUID();
  return { id, model: 'tiny.en', language: null, task: 'transcribe', fileName: 'a.ogg', inputPath: `uploads/${id}`, maxAttempts: 3, retentionSeconds: 3600, ...overrides };
}

const transcriptBy = (who: string): Transcript => ({ language: 'en', durationSeconds: 1, segments: [{ id: 0, start: 0, end: 1, text: who, words: null }] });

describe('the job store', () => {
  let dir: string;
  const open: Database[] = [];
  /** A database of its own for each test, so that no test sees another's jobs. */
  const fresh = async (): Promise<{ file: string; db: Database; store: JobStore }> => {
    const file = path.join(dir, `${randomUUID()}.db`);
    const db = await openDatabase(file);
    open.push(db);
    return { file, db, store: createJobStore(db) };
  };
  before(async () => {
    dir = await tempDir('cesar-store-');
  });
  after(async () => {
    await Promise.all(open.map((db) => db.close()));
    await rm(dir, { recursive: true, force: true });
  });

  test('racing claimers on separate connections each get distinct jobs, run after run', async () => {
    const { file, store } = await fresh();
    const connections = await Promise.all([1, 2, 3, 4].map(() => openDatabase(file)));
    try {
      const stores = connections.map(createJobStore);
      for (let run = 0; run < 100; run++) {
        const now = T0 + run;
        const jobs = [newJob(), newJob()];
        for (const job of jobs) {
          await store.enqueue(job, now);
        }
        // Four claimers race for two jobs: each job goes to exactly one, and two get nothing.
        const claims = await Promise.all(stores.map((racer, index) => racer.claim(`racer-${index}`, now, 60_000)));
        const won = claims.filter((claim) => claim !== undefined);
        assert.equal(won.length, 2, `run ${run}`);
        assert.deepEqual(won.map((claim) => claim.id).sort(), jobs.map((job) => job.id).sort(), `run ${run}`);
        assert.ok(won.every((claim) => claim.attempts === 1));
      }
    } finally {
      await Promise.all(connections.map((connection) => connection.close()));
    }
  });

  test('racing claimer processes each get distinct jobs and together take them all', async () => {
    const raceFile = path.join(dir, `${randomUUID()}.db`);
    const raceDb = await openDatabase(raceFile);
    const ids: string[] = [];
    try {
      const raceStore = createJobStore(raceDb);
      for (let i = 0; i < 90; i++) {
        const job = newJob();
        ids.push(job.id);
        await raceStore.enqueue(job, T0);
      }
    } finally {
      await raceDb.close();
    }
    const node = path.join(import.meta.dirname, '..', 'node_modules', '.bin', 'node');
    const worker = path.join(import.meta.dirname, 'support', 'claim-worker.ts');
    const outputs = await Promise.all(
      [1, 2, 3].map((n) => promisify(execFile)(node, [worker, raceFile, `process-${n}`], { env: { PATH: process.env.PATH ?? '' } })),
    );
    const claimed = outputs.flatMap((output) => output.stdout.split('\n').filter(Boolean));
    assert.equal(new Set(claimed).size, claimed.length, 'no job was claimed twice');
    assert.deepEqual(claimed.sort(), ids.sort(), 'every job was claimed');
  });

  test('a process killed inside a write transaction leaves the row unchanged and the database writable', async () => {
    const { file, store } = await fresh();
    const job = newJob();
    await store.enqueue(job, T0);
    const node = path.join(import.meta.dirname, '..', 'node_modules', '.bin', 'node');
    const script = path.join(import.meta.dirname, 'support', 'die-in-transaction.ts');
    const result = await new Promise<{ signal: string | null; stdout: string }>((resolve) => {
      execFile(node, [script, file, job.id], { env: { PATH: process.env.PATH ?? '' } }, (error, stdout) => {
        resolve({ signal: (error as { signal?: string } | null)?.signal ?? null, stdout });
      });
    });
    assert.equal(result.stdout, 'updated\n', 'the child changed the row before it died');
    assert.equal(result.signal, 'SIGKILL');
    assert.equal((await store.get(job.id))?.status, 'pending', 'the uncommitted change is gone');
    // The dead writer's lock went with it: a write here goes through (it would fail with SQLITE_BUSY otherwise).
    assert.equal((await store.claim('survivor', T0, LEASE_MS))?.id, job.id);
  });

  test('an unexpired lease is left alone; an expired one goes back to pending with its attempts kept', async () => {
    const { store } = await fresh();
    const job = newJob();
    await store.enqueue(job, T0);
    const claimed = await store.claim('owner-a', T0, LEASE_MS);
    assert.equal(claimed?.id, job.id);
    assert.ok(!(await store.reapExpired(T0 + LEASE_MS - 1)).some((reaped) => reaped.id === job.id));
    assert.equal((await store.get(job.id))?.status, 'processing');
    assert.equal(await store.heartbeat(job.id, 'owner-a', T0 + 900, LEASE_MS, { progress: 10, durationSeconds: 2 }), true);
    assert.ok(!(await store.reapExpired(T0 + 1500)).some((reaped) => reaped.id === job.id), 'the heartbeat extended the lease');
    assert.deepEqual(
      (await store.reapExpired(T0 + 900 + LEASE_MS + 1)).filter((reaped) => reaped.id === job.id),
      [{ id: job.id, status: 'pending' }],
    );
    const row = await store.get(job.id);
    assert.equal(row?.status, 'pending');
    assert.equal(row.attempts, 1);
    assert.equal(row.lease_owner, null);
    assert.equal(row.error_code, 'worker_crashed');
  });

  test("a stale owner's completion, failure, heartbeat and release change nothing once the job was taken back", async () => {
    const { db, store } = await fresh();
    const job = newJob();
    await store.enqueue(job, T0);
    const claimed = await store.claim('stale', T0 + 10_000, LEASE_MS);
    assert.equal(claimed?.id, job.id);
    await store.reapExpired(T0 + 10_000 + LEASE_MS + 1);
    const retaken = await store.claim('fresh', T0 + 20_000, LEASE_MS);
    assert.equal(retaken?.id, job.id);
    assert.equal(retaken.attempts, 2);

    assert.equal(await store.complete(job.id, 'stale', T0 + 20_001, transcriptBy('stale')), false);
    assert.equal(await store.fail(job.id, 'stale', T0 + 20_001, { code: 'transcription_failed', message: 'late' }, null), false);
    assert.equal(await store.heartbeat(job.id, 'stale', T0 + 20_001, LEASE_MS, { progress: 50, durationSeconds: 1 }), false);
    assert.equal(await store.release(job.id, 'stale', T0 + 20_001), false);
    const untouched = await store.get(job.id);
    assert.equal(untouched?.status, 'processing');
    assert.equal(untouched.lease_owner, 'fresh');
    assert.equal(untouched.progress, 0);

    assert.equal(await store.complete(job.id, 'fresh', T0 + 20_002, transcriptBy('fresh')), true);
    assert.equal((await store.transcript(job.id))?.segments[0]?.text, 'fresh');
    const rows = await db.read.all<{ n: number }>('SELECT COUNT(*) AS n FROM transcripts WHERE job_id = ?', [job.id]);
    assert.equal(rows[0]?.n, 1);
  });

  test('a job whose lease keeps expiring ends failed at max attempts and is never claimed again', async () => {
    const { store } = await fresh();
    const clock = manualClock(T0 + 100_000);
    const job = newJob({ maxAttempts: 2 });
    await store.enqueue(job, clock.now());
    for (let attempt = 1; attempt <= 2; attempt++) {
      const claimed = await store.claim(`crasher-${attempt}`, clock.now(), LEASE_MS);
      assert.equal(claimed?.attempts, attempt);
      clock.advance(LEASE_MS + 1);
      const reaped = (await store.reapExpired(clock.now())).find((row) => row.id === job.id);
      assert.equal(reaped?.status, attempt < 2 ? 'pending' : 'failed');
    }
    const row = await store.get(job.id);
    assert.equal(row?.status, 'failed');
    assert.equal(row.error_code, 'worker_crashed');
    assert.notEqual(row.completed_at, null);
    clock.advance(3_600_000);
    assert.equal(await store.claim('late', clock.now(), LEASE_MS), undefined);
  });

  test('a retryable failure waits out its backoff: not claimable before its retry time, claimable at it', async () => {
    const { store } = await fresh();
    const clock = manualClock(T0 + 1_000_000);
    const job = newJob();
    await store.enqueue(job, clock.now());
    assert.equal((await store.claim('first', clock.now(), LEASE_MS))?.id, job.id);
    const delay = retryDelayMs(1, 5000, 600_000, () => 0.5);
    assert.equal(await store.fail(job.id, 'first', clock.now(), { code: 'worker_crashed', message: 'died' }, clock.now() + delay), true);
    const waiting = await store.get(job.id);
    assert.equal(waiting?.status, 'pending');
    assert.equal(waiting.run_at, clock.now() + delay);
    assert.equal(waiting.error_code, 'worker_crashed');

    clock.advance(delay - 1);
    assert.equal(await store.claim('early', clock.now(), LEASE_MS), undefined);
    clock.advance(1);
    const second = await store.claim('on-time', clock.now(), LEASE_MS);
    assert.equal(second?.id, job.id);
    assert.equal(second.attempts, 2);
  });

  test('interactive jobs are claimed ahead of older batch jobs, each class oldest first, and queue positions follow', async () => {
    const { store } = await fresh();
    const batch = [];
    for (let i = 0; i < 3; i++) {
      batch.push(await store.enqueue(newJob(), T0 + i));
    }
    const interactive = [await store.enqueue(newJob({ priority: INTERACTIVE_PRIORITY }), T0 + 10), await store.enqueue(newJob({ priority: INTERACTIVE_PRIORITY }), T0 + 11)];
    const everyone = [...batch, ...interactive];
    const positions = await store.queuePositions(everyone);
    const expected = [...interactive, ...batch].map((job) => job.id);
    assert.deepEqual(expected.map((id) => positions.get(id)), [1, 2, 3, 4, 5]);
    // The single-job form agrees with the page form.
    for (const job of everyone) {
      assert.equal(await store.queuePosition(job), positions.get(job.id));
    }
    const claimed: string[] = [];
    for (;;) {
      const job = await store.claim('w', T0 + 100, LEASE_MS);
      if (!job) {
        break;
      }
      claimed.push(job.id);
    }
    assert.deepEqual(claimed, expected);
  });

  test('an interactive job waiting out a retry backoff does not hold back batch jobs that are due', async () => {
    const { store } = await fresh();
    const waiting = await store.enqueue(newJob({ priority: INTERACTIVE_PRIORITY }), T0);
    const claimedFirst = await store.claim('w1', T0, LEASE_MS);
    assert.equal(claimedFirst?.id, waiting.id);
    assert.ok(await store.fail(waiting.id, 'w1', T0 + 1, { code: 'worker_crashed', message: 'x' }, T0 + 5000));
    const due = await store.enqueue(newJob(), T0 + 2);
    assert.equal((await store.claim('w2', T0 + 3, LEASE_MS))?.id, due.id);
    assert.equal((await store.claim('w3', T0 + 5000, LEASE_MS))?.id, waiting.id);
  });

  test('retry delays double per attempt up to the cap, with jitter within ±25 %', () => {
    const base = 5000;
    const cap = 600_000;
    let previous = 0;
    for (let attempt = 1; attempt <= 12; attempt++) {
      const middle = retryDelayMs(attempt, base, cap, () => 0.5);
      assert.equal(middle, Math.min(cap, base * 2 ** (attempt - 1)));
      assert.ok(middle >= previous, 'never shorter than the previous attempt');
      previous = middle;
      assert.equal(retryDelayMs(attempt, base, cap, () => 0), Math.round(middle * 0.75));
      assert.equal(retryDelayMs(attempt, base, cap, () => 0.999_999), Math.round(middle * 1.249_999_5));
    }
    assert.equal(retryDelayMs(30, base, cap, () => 0.5), cap);
  });
});

describe('retention', () => {
  let dataDir: string;
  let db: Database;
  let store: JobStore;
  before(async () => {
    dataDir = await tempDir('cesar-retention-');
    await mkdir(path.join(dataDir, 'uploads'));
    await mkdir(path.join(dataDir, 'work'));
    db = await openDatabase(path.join(dataDir, 'cesar.db'));
    store = createJobStore(db);
  });
  after(async () => {
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const withFiles = async (job: NewJob): Promise<NewJob> => {
    const paths = jobPaths(dataDir, job.id);
    await writeFile(paths.upload, 'audio');
    await mkdir(paths.workDir, { recursive: true });
    await writeFile(paths.audio, 'pcm');
    return job;
  };

  test('finished jobs and their files are deleted when their own retention ends, not before, and unfinished ones are kept', async () => {
    const clock = manualClock();
    const sweeper = createRetentionSweeper({ store, dataDir, blobs: createLocalBlobStore(dataDir), clock, logger: silentLogger, defaultRetentionSeconds: 7200 });
    const completed = await withFiles(newJob({ retentionSeconds: 60 }));
    const canceled = await withFiles(newJob({ retentionSeconds: 60 }));
    const failed = await withFiles(newJob({ retentionSeconds: 3600 }));
    const pending = await withFiles(newJob({ retentionSeconds: 1 }));
    for (const job of [completed, failed, canceled, pending]) {
      await store.enqueue(job, clock.now());
    }
    for (const job of [completed, failed]) {
      assert.equal((await store.claim(job.id, clock.now(), LEASE_MS))?.id, job.id);
    }
    assert.equal(await store.complete(completed.id, completed.id, clock.now(), transcriptBy('done')), true);
    assert.equal(await store.fail(failed.id, failed.id, clock.now(), { code: 'undecodable_media', message: 'no' }, null), true);
    assert.equal((await store.cancel(canceled.id, clock.now()))?.canceled, true);

    clock.advance(59_999);
    assert.equal(await sweeper.sweep(), 0);
    clock.advance(1);
    assert.equal(await sweeper.sweep(), 2);
    for (const gone of [completed, canceled]) {
      assert.equal(await store.get(gone.id), undefined);
      assert.ok(!existsSync(jobPaths(dataDir, gone.id).upload));
      assert.ok(!existsSync(jobPaths(dataDir, gone.id).workDir));
    }
    assert.equal(await store.transcript(completed.id), undefined, 'the transcript went with its job');
    clock.advance(3600_000);
    assert.equal(await sweeper.sweep(), 1);
    assert.equal(await store.get(failed.id), undefined);
    assert.equal((await store.get(pending.id))?.status, 'pending', 'a job that has not finished is never expired');
    assert.ok(existsSync(jobPaths(dataDir, pending.id).upload));
  });

  test('jobs stored before per-job retention get the default one', async () => {
    const clock = manualClock(T0 + 10_000_000);
    const sweeper = createRetentionSweeper({ store, dataDir, blobs: createLocalBlobStore(dataDir), clock, logger: silentLogger, defaultRetentionSeconds: 100 });
    const old = newJob();
    await store.enqueue(old, clock.now());
    await db.write('UPDATE jobs SET retention_seconds = NULL WHERE id = ?', [old.id]);
    assert.equal((await store.cancel(old.id, clock.now()))?.canceled, true);
    assert.equal(await sweeper.sweep(), 0);
    assert.equal((await store.get(old.id))?.retention_seconds, 100);
    clock.advance(100_000);
    assert.equal(await sweeper.sweep(), 1);
  });

  test('at start-up, files that no pending or running job needs are removed', async () => {
    const clock = manualClock();
    const sweeper = createRetentionSweeper({ store, dataDir, blobs: createLocalBlobStore(dataDir), clock, logger: silentLogger, defaultRetentionSeconds: 3600 });
    const waiting = await withFiles(newJob());
    const running = await withFiles(newJob());
    const finished = await withFiles(newJob());
    for (const job of [waiting, running, finished]) {
      await store.enqueue(job, clock.now());
    }
    await db.write("UPDATE jobs SET status = 'processing', lease_owner = 'x', lease_until = ? WHERE id = ?", [clock.now() + LEASE_MS, running.id]);
    await db.write("UPDATE jobs SET status = 'failed', completed_at = ? WHERE id = ?", [clock.now(), finished.id]);
    const stray = await withFiles(newJob());

    await sweeper.removeOrphans();
    assert.ok(existsSync(jobPaths(dataDir, waiting.id).upload), 'a pending job keeps its upload');
    assert.ok(!existsSync(jobPaths(dataDir, waiting.id).workDir), 'but not half-done work');
    assert.ok(existsSync(jobPaths(dataDir, running.id).upload));
    assert.ok(existsSync(jobPaths(dataDir, running.id).workDir));
    for (const done of [finished, stray]) {
      assert.ok(!existsSync(jobPaths(dataDir, done.id).upload));
      assert.ok(!existsSync(jobPaths(dataDir, done.id).workDir));
    }
  });
});
