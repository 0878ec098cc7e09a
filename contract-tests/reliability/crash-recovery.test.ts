import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { openDatabase } from '../../src/jobs/database.ts';
import { loopedJfk } from '../support/audio.ts';
import { jobForm, requireModel, tempDir, waitForJob, words } from '../support/harness.ts';
import type { JobBody } from '../support/harness.ts';
import { startServerProcess } from '../support/server-process.ts';
import type { ServerProcess } from '../support/server-process.ts';

const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';
const KILL_CYCLES = 3;
// Short leases so that a killed server's job is taken back within a second of the restart.
const ENV = { CESAR_LEASE_MS: '1000', CESAR_MAX_ATTEMPTS: '10', CESAR_MAX_WORKERS: '1', CESAR_RETRY_BASE_MS: '50', CESAR_SHUTDOWN_GRACE_MS: '0' };

async function integrity(dataDir: string): Promise<{ check: string; transcripts: { job_id: string; n: number }[]; jobs: number }> {
  const db = await openDatabase(path.join(dataDir, 'cesar.db'));
  try {
    return {
      check: await db.integrityCheck(),
      transcripts: await db.read.all<{ job_id: string; n: number }>('SELECT job_id, COUNT(*) AS n FROM transcripts GROUP BY job_id'),
      jobs: (await db.read.get<{ n: number }>('SELECT COUNT(*) AS n FROM jobs'))?.n ?? -1,
    };
  } finally {
    await db.close();
  }
}

describe('a server killed while it transcribes', () => {
  let dataDir: string;
  let long: Blob;
  let server: ServerProcess | null = null;
  before(async () => {
    dataDir = await tempDir('cesar-crash-');
    // 33 s of speech: a couple of seconds of decoding, a window wide enough to kill the server in.
    long = (await loopedJfk(3)).blob;
  });
  after(async () => {
    server?.signal('SIGKILL');
    await server?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  test('loses no job and duplicates none over repeated SIGKILLs, and the database stays intact', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    server = await startServerProcess(dataDir, ENV);
    const ids: string[] = [];
    for (const [name, body] of [['long-1.ogg', long], ['jfk.ogg', undefined], ['long-2.ogg', long]] as const) {
      const submitted = await server.client.post('/jobs', { body: await jobForm(name, {}, body) });
      assert.equal(submitted.status, 202);
      ids.push((submitted.json as JobBody).id);
    }

    for (let cycle = 0; cycle < KILL_CYCLES; cycle++) {
      // Each kill sends its victim back to the queue, so there is always a job to be transcribing.
      const transcribing = await server.waitForLog((line) => line.msg === 'audio normalized; transcribing');
      const victim = String(transcribing.job_id);
      server.signal('SIGKILL');
      assert.equal(await server.exited, 'SIGKILL');
      assert.equal((await integrity(dataDir)).check, 'ok');
      server = await startServerProcess(dataDir, ENV);
      const after = (await server.client.get(`/jobs/${victim}`)).json as JobBody;
      assert.notEqual(after.status, 'failed', 'a killed attempt is retried, not failed');
    }

    let attempts = 0;
    for (const id of ids) {
      const done = await waitForJob(server.client, id, ['completed', 'failed', 'canceled']);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      attempts += Number(done.attempts);
      const text = words((await server.client.get(`/jobs/${id}/result`)).text);
      const loops = id === ids[1] ? 1 : 3;
      assert.deepEqual(text, Array.from({ length: loops }, () => JFK.split(' ')).flat(), 'the transcript is whole, not duplicated');
    }
    // One worker: each kill cost exactly the attempt it interrupted, and nothing ran twice beside those.
    assert.equal(attempts, ids.length + KILL_CYCLES);
    server.signal('SIGTERM');
    assert.equal(await server.exited, 0);
    server = null;

    const state = await integrity(dataDir);
    assert.equal(state.check, 'ok');
    assert.equal(state.jobs, ids.length, 'no job lost, none added');
    assert.deepEqual(
      state.transcripts.map((row) => row.job_id).sort(),
      [...ids].sort(),
    );
    assert.ok(state.transcripts.every((row) => row.n === 1), 'exactly one transcript per job');
  });
});

describe('a server killed right after it accepted a job', () => {
  let dataDir: string;
  let server: ServerProcess | null = null;
  before(async () => {
    dataDir = await tempDir('cesar-crash-');
  });
  after(async () => {
    server?.signal('SIGKILL');
    await server?.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  test('keeps the job it answered 202 for, and runs it after the restart', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    server = await startServerProcess(dataDir, ENV);
    const submitted = await server.client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(submitted.status, 202);
    server.signal('SIGKILL');
    assert.equal(await server.exited, 'SIGKILL');
    const id = (submitted.json as JobBody).id;
    const db = await openDatabase(path.join(dataDir, 'cesar.db'));
    try {
      const row = await db.read.get<{ status: string }>('SELECT status FROM jobs WHERE id = ?', [id]);
      assert.ok(row && ['pending', 'processing'].includes(row.status), `stored as ${row?.status ?? 'nothing'}`);
    } finally {
      await db.close();
    }
    server = await startServerProcess(dataDir, ENV);
    const done = await waitForJob(server.client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    assert.deepEqual(words((await server.client.get(`/jobs/${id}/result`)).text), JFK.split(' '));
  });
});
