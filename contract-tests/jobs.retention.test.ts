import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
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
