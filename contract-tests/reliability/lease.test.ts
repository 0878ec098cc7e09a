import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { loopedJfk } from '../support/audio.ts';
import { jobForm, requireModel, startServer, waitForJob } from '../support/harness.ts';
import type { JobBody, TestServer } from '../support/harness.ts';

describe('a job that runs longer than its lease', () => {
  let server: TestServer;
  let long: Blob;
  before(async () => {
    // The shortest lease allowed: the job below decodes for several lease periods.
    server = await startServer({ CESAR_LEASE_MS: '500', CESAR_MAX_WORKERS: '1' });
    long = (await loopedJfk(3)).blob;
  });
  after(() => server.close());

  test('keeps it by heartbeats while the worker decodes, and is never taken back or run twice', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client, service } = server;
    const reaped: string[] = [];
    const claimed: string[] = [];
    service.dispatcher.events.on('job:reaped', (id) => reaped.push(id));
    service.dispatcher.events.on('job:claimed', (job) => claimed.push(job.id));
    const id = ((await client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    // Watch the lease while the job runs: the first one seen, and the latest renewal.
    const leases: number[] = [];
    for (let row = await service.store.get(id); row?.status !== 'completed' && row?.status !== 'failed'; row = await service.store.get(id)) {
      if (row?.status === 'processing' && row.lease_until !== null && leases.at(-1) !== row.lease_until) {
        leases.push(row.lease_until);
      }
      await sleep(25);
    }
    const done = await waitForJob(client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempts, 1);
    const first = leases[0] ?? 0;
    const last = leases.at(-1) ?? 0;
    // A renewal that set `last` was written at last - 500: after the first lease had run out, the job was
    // still held, and no reaper took it.
    assert.ok(last - 500 > first, `the lease was renewed past its first expiry (${leases.length} leases seen)`);
    assert.deepEqual(reaped, []);
    assert.deepEqual(claimed, [id]);
  });
});
