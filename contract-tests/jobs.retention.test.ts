import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { jobForm, requireModel, startServer, waitForJob } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';
import { manualClock } from './support/manual-clock.ts';

describe('retention of finished jobs', () => {
  const clock = manualClock();
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_RETENTION_SECONDS: '3600' }, clock);
  });
  after(() => server.close());

  test("a finished job is deleted with its transcript and upload once its own retention has passed; others stay", async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client, dataDir } = server;
    const short = await client.post('/jobs', { body: await jobForm('jfk.ogg', { retention_seconds: '60' }) });
    assert.equal(short.status, 202);
    const shortId = (short.json as JobBody).id;
    assert.equal((short.json as JobBody).expires_at, null, 'an unfinished job does not expire');
    const kept = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;

    const done = await waitForJob(client, shortId, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    assert.equal(Date.parse(String(done.expires_at)) - Date.parse(String(done.completed_at)), 60_000);
    const keptDone = await waitForJob(client, kept, ['completed', 'failed']);
    assert.equal(Date.parse(String(keptDone.expires_at)) - Date.parse(String(keptDone.completed_at)), 3_600_000, 'the default retention');

    clock.advance(59_000);
    assert.equal(await server.service.retention.sweep(), 0);
    assert.equal((await client.get(`/jobs/${shortId}`)).status, 200);
    clock.advance(1_000);
    assert.equal(await server.service.retention.sweep(), 1);
    assert.equal((await client.get(`/jobs/${shortId}`)).status, 404);
    assert.equal((await client.get(`/jobs/${shortId}/result`)).status, 404);
    assert.ok(!existsSync(path.join(dataDir, 'uploads', shortId)));
    assert.equal((await client.get(`/jobs/${kept}/result`)).status, 200);
  });

  test('a retention that is not a positive whole number of seconds is refused', async () => {
    const { client } = server;
    for (const value of ['0', '-5', 'soon', '1.5']) {
      const refused = await client.post('/jobs', { body: await jobForm('jfk.ogg', { retention_seconds: value }) });
      assert.equal(refused.status, 400, value);
    }
  });
});

describe('retention of a job that still owes a webhook', () => {
  const clock = manualClock();
  let server: TestServer;
  let receiver: Server;
  let received = 0;
  before(async () => {
    // A receiver that is down: every delivery fails and is retried later.
    receiver = createServer((_req, res) => {
      received++;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    server = await startServer(
      {
        CESAR_WEBHOOK_SECRETS: `whsec_${randomBytes(32).toString('base64')}`,
        CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true',
        CESAR_URL_ALLOWED_PORTS: String(port),
      },
      clock,
    );
  });
  after(async () => {
    await server.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  test('is kept past its retention until its webhook is delivered or given up, so the message is not lost', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const address = receiver.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await jobForm('jfk.ogg', { retention_seconds: '60', webhook_url: url }) })).json as JobBody).id;
    assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
    while (received === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    clock.advance(61_000);
    assert.equal(await server.service.retention.sweep(), 0, 'the completed event is still owed');
    assert.equal((await client.get(`/jobs/${id}`)).status, 200);
  });
});
