/**
 * Whole servers on PostgreSQL (`CESAR_DATABASE_URL`), as real processes: a real clip transcribed end to end, a
 * worker node SIGKILLed mid-job whose job another node runs again within the heartbeat window, and PostgreSQL
 * stopped and started again under a running job. The nodes share one data directory (a shared volume) for the
 * uploads: object storage for them is another part of the scale-out work.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import { loopedJfk } from './support/audio.ts';
import { jobForm, requireModel, startServer, tempDir, waitForJob, words } from './support/harness.ts';
import type { JobBody } from './support/harness.ts';
import { requirePostgres, startPostgres } from './support/postgres.ts';
import type { TestPostgres } from './support/postgres.ts';
import { killAndAwaitRerun, startServerProcess } from './support/server-process.ts';
import type { ServerProcess } from './support/server-process.ts';

const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';
const ENV = { CESAR_LEASE_MS: '1000', CESAR_MAX_ATTEMPTS: '5', CESAR_MAX_WORKERS: '1', CESAR_RETRY_BASE_MS: '1000', CESAR_SHUTDOWN_GRACE_MS: '0' };

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The statuses a job's event log went through, in order. */
async function statusHistory(url: string, id: string): Promise<string[]> {
  const rows = await query<{ data: string }>(url, `SELECT data FROM job_events WHERE job_id = $1 AND type = 'status' ORDER BY seq`, [id]);
  return rows.map((row) => (JSON.parse(row.data) as { status: string }).status);
}

describe('servers on PostgreSQL', () => {
  let postgres: TestPostgres | null = null;
  let dataDir: string;
  const servers: ServerProcess[] = [];
  before(async () => {
    dataDir = await tempDir('cesar-pg-nodes-');
  });
  after(async () => {
    for (const server of servers) {
      server.signal('SIGKILL');
      await server.exited;
    }
    await postgres?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  const database = async (): Promise<string> => {
    postgres ??= await startPostgres();
    return postgres.createDatabase();
  };

  test('a server on PostgreSQL transcribes a real clip end to end and reports the database in /health', async (t) => {
    if (!(await requirePostgres(t)) || !requireModel(t)) {
      return;
    }
    const url = await database();
    const server = await startServer({ CESAR_DATABASE_URL: url });
    try {
      const health = await server.client.get('/health');
      assert.equal(health.status, 200);
      assert.deepEqual((health.json as { checks: { name: string; ok: boolean }[] }).checks.find((check) => check.name === 'database')?.ok, true);
      const submitted = await server.client.post('/jobs', { body: await jobForm('jfk.ogg') });
      assert.equal(submitted.status, 202);
      const id = (submitted.json as JobBody).id;
      const done = await waitForJob(server.client, id, ['completed', 'failed', 'canceled']);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      assert.deepEqual(words((await server.client.get(`/jobs/${id}/result`)).text), JFK.split(' '));
      assert.deepEqual(await statusHistory(url, id), ['pending', 'processing', 'completed']);
      const [row] = await query<{ state: string }>(url, 'SELECT state FROM pgboss.job WHERE id = $1', [id]);
      assert.equal(row?.state, 'completed', "pg-boss's entry is settled with the row");
    } finally {
      await server.close();
    }
  });

  test('a worker node SIGKILLed mid-job: another node runs the job again within the heartbeat window, and it completes exactly once', async (t) => {
    if (!(await requirePostgres(t)) || !requireModel(t)) {
      return;
    }
    const url = await database();
    const env = { ...ENV, CESAR_DATABASE_URL: url };
    const a = await startServerProcess(dataDir, env);
    servers.push(a);
    // 33 s of speech: a window wide enough to kill the node in.
    const submitted = await a.client.post('/jobs', { body: await jobForm('long.ogg', {}, (await loopedJfk(3)).blob) });
    assert.equal(submitted.status, 202);
    const id = (submitted.json as JobBody).id;
    await a.waitForLog((line) => line.msg === 'audio normalized; transcribing' && line.job_id === id);
    // The other node is up and idle before the kill: the job is node A's, so B does not take it.
    const b = await startServerProcess(dataDir, env);
    servers.push(b);
    const recoveredMs = await killAndAwaitRerun(a, b, id);
    t.diagnostic(`the killed node's job started again on the other node ${recoveredMs} ms after the kill`);
    // pg-boss's heartbeat window is 10 s at least (CESAR_LEASE_MS is 1 s here), its monitor runs every second,
    // and the retry waits its backoff (1 s base, jittered): well within 30 s on a loaded machine.
    assert.ok(recoveredMs < 30_000, `recovered after ${recoveredMs} ms`);
    const done = await waitForJob(b.client, id, ['completed', 'failed', 'canceled']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempts, 2);
    assert.deepEqual(words((await b.client.get(`/jobs/${id}/result`)).text), Array.from({ length: 3 }, () => JFK.split(' ')).flat());
    const transcripts = await query<{ n: number }>(url, 'SELECT COUNT(*)::int AS n FROM transcripts WHERE job_id = $1', [id]);
    assert.equal(transcripts[0]?.n, 1, 'exactly one transcript');
    assert.equal((await statusHistory(url, id)).filter((status) => status === 'completed').length, 1, 'completed once');
    b.signal('SIGTERM');
    assert.equal(await b.exited, 0);
  });

  test('PostgreSQL stopped and started again mid-job: /health says not ready while it is down, the node reconnects and the job completes', async (t) => {
    if (!(await requirePostgres(t)) || !requireModel(t)) {
      return;
    }
    if (process.env.CESAR_TEST_DATABASE_URL) {
      t.skip('a shared CESAR_TEST_DATABASE_URL server is not stopped by a test');
      return;
    }
    const url = await database();
    const server = await startServerProcess(dataDir, { ...ENV, CESAR_DATABASE_URL: url });
    servers.push(server);
    const submitted = await server.client.post('/jobs', { body: await jobForm('long.ogg', {}, (await loopedJfk(3)).blob) });
    assert.equal(submitted.status, 202);
    const id = (submitted.json as JobBody).id;
    await server.waitForLog((line) => line.msg === 'audio normalized; transcribing' && line.job_id === id);
    await postgres?.stopServer();
    let down = await server.client.get('/health');
    for (let i = 0; i < 20 && down.status !== 503; i++) {
      await sleep(250);
      down = await server.client.get('/health');
    }
    assert.equal(down.status, 503);
    assert.equal((down.json as { checks: { name: string; ok: boolean }[] }).checks.find((check) => check.name === 'database')?.ok, false);
    await sleep(3000);
    await postgres?.startServer();
    let up = await server.client.get('/health');
    for (let i = 0; i < 40 && up.status !== 200; i++) {
      await sleep(250);
      up = await server.client.get('/health');
    }
    assert.equal(up.status, 200);
    const done = await waitForJob(server.client, id, ['completed', 'failed', 'canceled']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(words((await server.client.get(`/jobs/${id}/result`)).text), Array.from({ length: 3 }, () => JFK.split(' ')).flat());
    server.signal('SIGTERM');
    assert.equal(await server.exited, 0, 'the node lived through the outage');
  });
});
