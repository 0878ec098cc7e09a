import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { openDatabase } from '../../src/jobs/database.ts';
import type { JobRow } from '../../src/jobs/job-store.ts';
import { loopedJfk } from '../support/audio.ts';
import type { ContractClient } from '../support/contract.ts';
import { jobForm, requireModel, tempDir, waitForJob } from '../support/harness.ts';
import type { JobBody } from '../support/harness.ts';
import { startServerProcess } from '../support/server-process.ts';
import type { ServerProcess } from '../support/server-process.ts';

async function storedJob(dataDir: string, id: string): Promise<JobRow | undefined> {
  const db = await openDatabase(path.join(dataDir, 'cesar.db'));
  try {
    assert.equal(await db.integrityCheck(), 'ok');
    return await db.read.get<JobRow>('SELECT * FROM jobs WHERE id = ?', [id]);
  } finally {
    await db.close();
  }
}

async function waitForTranscribing(client: ContractClient, id: string): Promise<void> {
  for (;;) {
    const job = (await client.get(`/jobs/${id}`)).json as JobBody;
    if (job.status === 'processing' && job.duration_seconds !== null) {
      return;
    }
    assert.ok(job.status === 'pending' || job.status === 'processing', `job became ${job.status}`);
    await sleep(20);
  }
}

describe('shutting down on a signal', () => {
  let long: Blob;
  const dirs: string[] = [];
  let servers: ServerProcess[] = [];
  before(async () => {
    long = (await loopedJfk(3)).blob;
  });
  afterEach(async () => {
    for (const server of servers) {
      server.signal('SIGKILL');
      await server.exited;
    }
    servers = [];
    for (const dir of dirs.splice(0)) {
      await rm(dir, { recursive: true, force: true });
    }
  });
  const start = async (dataDir: string, env: Record<string, string>): Promise<ServerProcess> => {
    const server = await startServerProcess(dataDir, env);
    servers.push(server);
    return server;
  };

  test('SIGTERM past the grace period releases the running job, which the next start completes', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const dataDir = await tempDir('cesar-shutdown-');
    dirs.push(dataDir);
    // A long lease: the job must come back because it was released, not because its lease ran out.
    const env = { CESAR_SHUTDOWN_GRACE_MS: '100', CESAR_LEASE_MS: '600000' };
    const first = await start(dataDir, env);
    const id = ((await first.client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    await waitForTranscribing(first.client, id);
    first.signal('SIGTERM');
    assert.equal(await first.exited, 0);
    await first.waitForLog((line) => line.msg === 'job released for the next start' && line.job_id === id);

    const released = await storedJob(dataDir, id);
    assert.equal(released?.status, 'pending');
    assert.equal(released.lease_owner, null);
    assert.equal(released.attempts, 0, 'an attempt cut short by a shutdown is not counted');

    const second = await start(dataDir, env);
    const done = await waitForJob(second.client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempts, 1);
  });

  test('SIGTERM lets a running job finish within the grace period before the server exits', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const dataDir = await tempDir('cesar-shutdown-');
    dirs.push(dataDir);
    const server = await start(dataDir, { CESAR_SHUTDOWN_GRACE_MS: '120000' });
    const id = ((await server.client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    await waitForTranscribing(server.client, id);
    server.signal('SIGTERM');
    assert.equal(await server.exited, 0);
    const stored = await storedJob(dataDir, id);
    assert.equal(stored?.status, 'completed');
  });

  test('a second signal exits at once, and the job it cut short runs again at the next start', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const dataDir = await tempDir('cesar-shutdown-');
    dirs.push(dataDir);
    const env = { CESAR_SHUTDOWN_GRACE_MS: '600000', CESAR_LEASE_MS: '1000' };
    const first = await start(dataDir, env);
    const id = ((await first.client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    await waitForTranscribing(first.client, id);
    first.signal('SIGTERM');
    await first.waitForLog((line) => line.msg === 'shutting down');
    first.signal('SIGINT');
    assert.equal(await first.exited, 130);
    assert.ok(first.logs.some((line) => line.msg === 'second signal; exiting now'));
    assert.equal((await storedJob(dataDir, id))?.status, 'processing', 'the job was still running: the grace period was cut short');

    const second = await start(dataDir, env);
    assert.equal((await waitForJob(second.client, id, ['completed', 'failed'])).status, 'completed');
  });
});
