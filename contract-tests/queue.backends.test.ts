/**
 * The job store's behaviours that do not need an injected clock, run against both backends: SQLite with its own
 * claim SQL, and PostgreSQL with the queue on pg-boss. Then what only PostgreSQL has: migrations applied once by
 * nodes starting together, an attempt pg-boss takes back from a worker that stopped its heartbeat, fencing of
 * that worker's late answer, and the reaper bringing the row in line.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import { openDatabase } from '../src/jobs/database.ts';
import type { DispatcherEvents } from '../src/jobs/dispatcher.ts';
import type { Database } from '../src/jobs/database.ts';
import { createIdempotencyStore, IN_FLIGHT_LEASE_MS } from '../src/jobs/idempotency-store.ts';
import { createJobEventLog } from '../src/jobs/job-events.ts';
import { createJobStore, INTERACTIVE_PRIORITY } from '../src/jobs/job-store.ts';
import type { JobStore, NewJob } from '../src/jobs/job-store.ts';
import { silentLogger } from '../src/logger.ts';
import { openPostgres } from '../src/postgres/database.ts';
import { createPostgresJobStore } from '../src/postgres/job-store.ts';
import type { Transcript } from '../src/transcripts/transcript.ts';
import { createOutbox } from '../src/webhooks/outbox.ts';
import { tempDir } from './support/harness.ts';
import { startPostgres } from './support/postgres.ts';
import type { TestPostgres } from './support/postgres.ts';

const LEASE_MS = 1000;

function newJob(overrides: Partial<NewJob> = {}): NewJob {
  const id = randomUUID();
  return { id, model: 'tiny.en', language: null, task: 'transcribe', fileName: 'a.ogg', inputPath: `uploads/${id}`, maxAttempts: 3, retentionSeconds: 3600, ...overrides };
}

const transcriptBy = (who: string): Transcript => ({ language: 'en', durationSeconds: 1, segments: [{ id: 0, start: 0, end: 1, text: who, words: null }] });

interface Backend {
  db: Database;
  store: JobStore;
  /** Another connection (or set of them) to the same database, as another node has. */
  another: () => Promise<JobStore>;
}

/** Behaviours both backends must have; `fresh()` gives each test an empty database of its own. */
function jobStoreBehaviours(name: string, setup: { before(): Promise<void>; after(): Promise<void>; fresh(): Promise<Backend> }): void {
  describe(`the job store on ${name}`, () => {
    before(() => setup.before());
    after(() => setup.after());

    test('a job is pending, then claimed once with a lease, then completed with its transcript; a second completion changes nothing', async () => {
      const { store } = await setup.fresh();
      const job = await store.enqueue(newJob(), Date.now());
      assert.equal(job.status, 'pending');
      assert.equal(await store.queuePosition(job), 1);
      assert.equal(await store.pendingCount(10), 1);
      const claimed = await store.claim('w1', Date.now(), LEASE_MS);
      assert.equal(claimed?.id, job.id);
      assert.equal(claimed.status, 'processing');
      assert.equal(claimed.attempts, 1);
      assert.equal(typeof claimed.seq, 'number');
      assert.equal(await store.claim('w2', Date.now(), LEASE_MS), undefined);
      const owner = claimed.lease_owner ?? '';
      assert.equal(await store.heartbeat(job.id, owner, Date.now(), LEASE_MS, { progress: 40, durationSeconds: 3 }), true);
      assert.equal(await store.recordProgress(job.id, owner, Date.now(), { progress: 50, processedSeconds: 1.5, speed: 2 }), true);
      assert.equal((await store.get(job.id))?.progress, 50);
      assert.equal(await store.complete(job.id, owner, Date.now(), transcriptBy('first')), true);
      assert.equal(await store.complete(job.id, owner, Date.now(), transcriptBy('again')), false);
      const done = await store.get(job.id);
      assert.equal(done?.status, 'completed');
      assert.equal(done.lease_owner, null);
      assert.equal((await store.transcript(job.id))?.segments[0]?.text, 'first');
      assert.equal(await store.queuePosition(done), null);
    });

    test('interactive jobs are claimed ahead of older batch jobs, each class oldest first, and queue positions follow', async () => {
      const { store } = await setup.fresh();
      const batch = [];
      for (let i = 0; i < 3; i++) {
        batch.push(await store.enqueue(newJob(), Date.now()));
      }
      const interactive = [await store.enqueue(newJob({ priority: INTERACTIVE_PRIORITY }), Date.now()), await store.enqueue(newJob({ priority: INTERACTIVE_PRIORITY }), Date.now())];
      const expected = [...interactive, ...batch].map((job) => job.id);
      const positions = await store.queuePositions([...batch, ...interactive]);
      assert.deepEqual(expected.map((id) => positions.get(id)), [1, 2, 3, 4, 5]);
      const claimed: string[] = [];
      for (let job = await store.claim('w', Date.now(), LEASE_MS); job; job = await store.claim('w', Date.now(), LEASE_MS)) {
        claimed.push(job.id);
      }
      assert.deepEqual(claimed, expected);
    });

    test('a canceled job fences off its worker: heartbeat, progress, completion and failure all change nothing', async () => {
      const { store } = await setup.fresh();
      const job = await store.enqueue(newJob(), Date.now());
      const claimed = await store.claim('w', Date.now(), LEASE_MS);
      const owner = claimed?.lease_owner ?? '';
      assert.equal((await store.cancel(job.id, Date.now()))?.canceled, true);
      assert.equal(await store.heartbeat(job.id, owner, Date.now(), LEASE_MS, { progress: 1, durationSeconds: null }), false);
      assert.equal(await store.recordProgress(job.id, owner, Date.now(), { progress: 2, processedSeconds: 1, speed: 1 }), false);
      assert.equal(await store.complete(job.id, owner, Date.now(), transcriptBy('late')), false);
      assert.equal(await store.fail(job.id, owner, Date.now(), { code: 'internal_error', message: 'x' }, null), false);
      assert.equal((await store.get(job.id))?.status, 'canceled');
      assert.equal((await store.cancel(job.id, Date.now()))?.canceled, false);
      assert.equal(await store.claim('again', Date.now(), LEASE_MS), undefined);
    });

    test('a canceled pending job and a deleted one are never claimed', async () => {
      const { store } = await setup.fresh();
      const canceled = await store.enqueue(newJob(), Date.now());
      const removed = await store.enqueue(newJob(), Date.now());
      assert.equal((await store.cancel(canceled.id, Date.now()))?.canceled, true);
      assert.equal((await store.remove(removed.id))?.id, removed.id);
      assert.equal(await store.get(removed.id), undefined);
      assert.equal(await store.claim('w', Date.now(), LEASE_MS), undefined);
      assert.equal(await store.pendingCount(10), 0);
    });

    test('a retryable failure waits out its retry time, then runs as the next attempt; a final failure is never claimed again', async () => {
      const { store } = await setup.fresh();
      const job = await store.enqueue(newJob(), Date.now());
      const first = await store.claim('w1', Date.now(), LEASE_MS);
      const retryAt = Date.now() + 1500;
      assert.equal(await store.fail(job.id, first?.lease_owner ?? '', Date.now(), { code: 'worker_crashed', message: 'died' }, retryAt), true);
      const waiting = await store.get(job.id);
      assert.equal(waiting?.status, 'pending');
      assert.equal(waiting.run_at, retryAt);
      assert.equal(waiting.error_code, 'worker_crashed');
      assert.equal(await store.claim('early', Date.now(), LEASE_MS), undefined);
      await sleep(Math.max(0, retryAt - Date.now()) + 1100);
      const second = await store.claim('on-time', Date.now(), LEASE_MS);
      assert.equal(second?.id, job.id);
      assert.equal(second.attempts, 2);
      // The first attempt's owner is fenced off from the second attempt.
      assert.equal(await store.complete(job.id, first?.lease_owner ?? '', Date.now(), transcriptBy('stale')), false);
      assert.equal(await store.fail(job.id, second.lease_owner ?? '', Date.now(), { code: 'undecodable_media', message: 'no' }, null), true);
      assert.equal((await store.get(job.id))?.status, 'failed');
      assert.equal(await store.claim('late', Date.now(), LEASE_MS), undefined);
    });

    test('a job released at shutdown runs again without the attempt counting', async () => {
      const { store } = await setup.fresh();
      const job = await store.enqueue(newJob({ maxAttempts: 1 }), Date.now());
      const first = await store.claim('w1', Date.now(), LEASE_MS);
      assert.equal(await store.release(job.id, first?.lease_owner ?? '', Date.now()), true);
      assert.equal((await store.get(job.id))?.attempts, 0);
      const second = await store.claim('w2', Date.now(), LEASE_MS);
      assert.equal(second?.id, job.id);
      assert.equal(second.attempts, 1);
      // Its one attempt was not spent by the release: it runs now, and its failure is final.
      assert.equal(await store.fail(job.id, second.lease_owner ?? '', Date.now(), { code: 'internal_error', message: 'x' }, null), true);
      assert.equal(await store.claim('w3', Date.now(), LEASE_MS), undefined);
    });

    test('racing claimers on separate connections each get distinct jobs and together take them all', async () => {
      const { store, another } = await setup.fresh();
      const stores = [store, await another(), await another(), await another()];
      const ids = new Set<string>();
      for (let i = 0; i < 40; i++) {
        ids.add((await store.enqueue(newJob(), Date.now())).id);
      }
      const claimed = await Promise.all(
        stores.map(async (each, n) => {
          const mine: string[] = [];
          for (let job = await each.claim(`w${n}`, Date.now(), LEASE_MS); job; job = await each.claim(`w${n}`, Date.now(), LEASE_MS)) {
            mine.push(job.id);
          }
          return mine;
        }),
      );
      const all = claimed.flat();
      assert.equal(all.length, 40);
      assert.deepEqual(new Set(all), ids);
    });

    test('the outbox, idempotency keys and the event log work through the shared SQL', async () => {
      const { db, store } = await setup.fresh();
      const job = await store.enqueue(newJob({ webhook: { url: 'http://127.0.0.1:1/hook', events: ['processing', 'completed'] } }), Date.now());
      const outbox = createOutbox(db);
      const claimed = await store.claim('w', Date.now(), LEASE_MS);
      assert.equal(await outbox.sweep(Date.now(), (row, event) => JSON.stringify({ id: row.id, event })), 1);
      assert.equal(await store.complete(job.id, claimed?.lease_owner ?? '', Date.now(), transcriptBy('x')), true);
      assert.equal(await outbox.sweep(Date.now(), (row, event) => JSON.stringify({ id: row.id, event })), 1);
      const due = await outbox.claimDue(Date.now(), 10_000, 10);
      assert.deepEqual(due.map((message) => message.event).sort(), ['completed', 'processing']);
      assert.deepEqual(await outbox.claimDue(Date.now(), 10_000, 10), []);
      const keys = createIdempotencyStore(db);
      const t0 = Date.now();
      assert.deepEqual(await keys.claim('s', 'k', t0), { kind: 'owner' });
      assert.deepEqual(await keys.claim('s', 'k', t0 + 1), { kind: 'in_flight' });
      // A claim in flight is a lease: renewed, it outlives its first term; its request gone, it ends.
      await keys.renew('s', 'k', t0 + IN_FLIGHT_LEASE_MS / 2);
      assert.deepEqual(await keys.claim('s', 'k', t0 + IN_FLIGHT_LEASE_MS + 1), { kind: 'in_flight' });
      assert.deepEqual(await keys.claim('s', 'k', t0 + IN_FLIGHT_LEASE_MS * 1.5 + 1), { kind: 'owner' });
      // Answered, the key lasts its TTL, not the claim's lease.
      await keys.complete('s', 'k', { fingerprint: 'f', jobId: job.id, status: 202, body: '{}' }, t0, 24 * 3600_000);
      assert.equal((await keys.claim('s', 'k', t0 + IN_FLIGHT_LEASE_MS * 3)).kind, 'done');
      const events = createJobEventLog(db, { now: () => Date.now() }, (error) => assert.fail(String(error)));
      await events.syncStatus(job.id);
      const logged = await events.after(job.id, 0);
      assert.deepEqual(logged.map((event) => (JSON.parse(event.data) as { status: string }).status), ['pending', 'completed']);
      assert.equal(typeof logged[0]?.seq, 'number');
    });

    test("a job's progress events are stored in the order the worker sent them, all of them before progressStored resolves", async () => {
      const { db, store } = await setup.fresh();
      const job = await store.enqueue(newJob(), Date.now());
      const log = createJobEventLog(db, { now: () => Date.now() }, (error) => assert.fail(String(error)));
      const dispatcherEvents = new EventEmitter<DispatcherEvents>();
      log.start(dispatcherEvents);
      const worker = { pid: 1, model: 'tiny.en', rssBytes: 0, peakRssBytes: 0, jobs: 1 };
      // Sent at once, as a worker's messages arrive: the writes of one job must not overtake each other.
      for (let id = 0; id < 20; id += 1) {
        const segment = { id, start: id, end: id + 1, text: `segment ${id}`, words: null };
        dispatcherEvents.emit('job:progress', job.id, { type: 'cesar:progress', processedSeconds: id + 1, durationSeconds: 20, segment, worker });
      }
      await log.progressStored(job.id);
      log.stop();
      const logged = await log.after(job.id, 0);
      const segments = logged.filter((event) => event.type === 'segment').map((event) => (JSON.parse(event.data) as { id: number }).id);
      assert.deepEqual(segments, Array.from({ length: 20 }, (_, id) => id));
      const progress = logged.filter((event) => event.type === 'progress').map((event) => (JSON.parse(event.data) as { progress: number }).progress);
      assert.equal(progress.length, 20);
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
    });
  });
}

let sqliteDir = '';
const sqliteOpen: Database[] = [];
jobStoreBehaviours('SQLite', {
  async before() {
    sqliteDir = await tempDir('cesar-store-');
  },
  async after() {
    await Promise.all(sqliteOpen.map((db) => db.close()));
    await rm(sqliteDir, { recursive: true, force: true });
  },
  async fresh() {
    const file = path.join(sqliteDir, `${randomUUID()}.db`);
    const db = await openDatabase(file);
    sqliteOpen.push(db);
    return {
      db,
      store: createJobStore(db),
      async another() {
        const other = await openDatabase(file);
        sqliteOpen.push(other);
        return createJobStore(other);
      },
    };
  },
});

let server: TestPostgres | null = null;
const closers: (() => Promise<void>)[] = [];

/** A node's database and job store on `url`, closed after the tests. */
async function pgNode(url: string, leaseMs = LEASE_MS): Promise<{ db: Database; store: JobStore & { close(): Promise<void> } }> {
  const db = await openPostgres({ url, logger: silentLogger, max: 4 });
  const store = await createPostgresJobStore({ db, url, logger: silentLogger, leaseMs, retryBaseMs: 1000, retryMaxMs: 60_000 });
  closers.push(async () => {
    await store.close();
    await db.close();
  });
  return { db, store };
}

jobStoreBehaviours('PostgreSQL (pg-boss queue)', {
  async before() {
    server = await startPostgres();
  },
  async after() {
    await Promise.all(closers.splice(0).map((close) => close()));
    await server?.stop();
  },
  async fresh() {
    if (!server) {
      throw new Error('no server');
    }
    const url = await server.createDatabase();
    const node = await pgNode(url);
    return { ...node, another: async () => (await pgNode(url)).store };
  },
});

describe('the job store on PostgreSQL, across nodes', () => {
  let postgres: TestPostgres;
  before(async () => {
    postgres = await startPostgres();
  });
  after(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await postgres.stop();
  });

  test('three nodes starting together apply each migration exactly once and all come up', async () => {
    const url = await postgres.createDatabase();
    const nodes = await Promise.all([1, 2, 3].map(() => pgNode(url)));
    assert.equal(nodes.length, 3);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number; n: string }>('SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version');
      assert.ok(rows.length >= 1);
      for (const row of rows) {
        assert.equal(Number(row.n), 1);
      }
    } finally {
      await client.end();
    }
    // Each node sees what another enqueued.
    const job = await nodes[0]?.store.enqueue(newJob(), Date.now());
    assert.equal((await nodes[2]?.store.claim('w', Date.now(), LEASE_MS))?.id, job?.id);
  });

  test("a worker that stops its heartbeat loses the attempt to another node; its late answer is fenced off and the reaper brings the row in line", async () => {
    const url = await postgres.createDatabase();
    const a = await pgNode(url, 500);
    const b = await pgNode(url, 500);
    const job = await a.store.enqueue(newJob(), Date.now());
    const first = await a.store.claim('node-a', Date.now(), 500);
    assert.equal(first?.id, job.id);
    // Node A says nothing more. pg-boss's heartbeat window is at least 10 s; its monitor runs every second.
    const started = Date.now();
    let reaped: { id: string; status: string }[] = [];
    while (reaped.length === 0 && Date.now() - started < 30_000) {
      await sleep(250);
      reaped = await b.store.reapExpired(Date.now());
    }
    const recoveredMs = Date.now() - started;
    assert.deepEqual(reaped, [{ id: job.id, status: 'pending' }], `reaped after ${recoveredMs} ms`);
    assert.equal((await b.store.get(job.id))?.error_code, 'worker_crashed');
    let second = await b.store.claim('node-b', Date.now(), 500);
    while (!second && Date.now() - started < 60_000) {
      // pg-boss's retry delay (1 s here, with jitter) before the job may run again.
      await sleep(200);
      second = await b.store.claim('node-b', Date.now(), 500);
    }
    assert.equal(second?.id, job.id);
    assert.equal(second.attempts, 2);
    const stale = first?.lease_owner ?? '';
    assert.equal(await a.store.heartbeat(job.id, stale, Date.now(), 500, { progress: 99, durationSeconds: 1 }), false);
    assert.equal(await a.store.complete(job.id, stale, Date.now(), transcriptBy('stale')), false);
    assert.equal(await b.store.complete(job.id, second.lease_owner ?? '', Date.now(), transcriptBy('fresh')), true);
    assert.equal((await a.store.transcript(job.id))?.segments[0]?.text, 'fresh');
    assert.equal((await a.store.get(job.id))?.status, 'completed');
  });

  test('a task run exclusively (the reaper, the retention sweep) runs on one node at a time, and on the next when the first is done', async () => {
    const url = await postgres.createDatabase();
    const [a, b] = await Promise.all([pgNode(url), pgNode(url)]);
    let running = 0;
    let most = 0;
    const task = async (): Promise<string> => {
      running++;
      most = Math.max(most, running);
      await sleep(300);
      running--;
      return 'ran';
    };
    const outcomes = await Promise.all([a.db.exclusively('retention', task), b.db.exclusively('retention', task)]);
    assert.deepEqual([...outcomes].sort(), ['ran', undefined]);
    assert.equal(most, 1);
    assert.equal(await b.db.exclusively('retention', task), 'ran');
  });

  test('two nodes claiming webhook messages together never take the same one', async () => {
    const url = await postgres.createDatabase();
    const [a, b] = await Promise.all([pgNode(url), pgNode(url)]);
    const ids = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const job = await a.store.enqueue(newJob({ webhook: { url: 'http://127.0.0.1:1/hook', events: ['canceled'] } }), Date.now());
      await a.store.cancel(job.id, Date.now());
      ids.add(job.id);
    }
    assert.equal(await createOutbox(a.db).sweep(Date.now(), (row, event) => JSON.stringify({ id: row.id, event })), 30);
    const claimAll = async (db: Database): Promise<string[]> => {
      const mine: string[] = [];
      for (let due = await createOutbox(db).claimDue(Date.now(), 60_000, 2); due.length > 0; due = await createOutbox(db).claimDue(Date.now(), 60_000, 2)) {
        mine.push(...due.map((message) => message.job_id));
      }
      return mine;
    };
    const taken = (await Promise.all([claimAll(a.db), claimAll(b.db), claimAll(a.db), claimAll(b.db)])).flat();
    assert.equal(taken.length, 30, 'each message once');
    assert.deepEqual(new Set(taken), ids);
  });

  test('a heartbeat that reaches pg-boss keeps the attempt past its window', async () => {
    const url = await postgres.createDatabase();
    const a = await pgNode(url, 500);
    const job = await a.store.enqueue(newJob(), Date.now());
    const claimed = await a.store.claim('node-a', Date.now(), 500);
    const owner = claimed?.lease_owner ?? '';
    const until = Date.now() + 13_000;
    while (Date.now() < until) {
      assert.equal(await a.store.heartbeat(job.id, owner, Date.now(), 500, { progress: 1, durationSeconds: null }), true);
      await sleep(1000);
    }
    assert.deepEqual(await a.store.reapExpired(Date.now() + 1000), []);
    assert.equal(await a.store.complete(job.id, owner, Date.now(), transcriptBy('kept')), true);
  });
});
