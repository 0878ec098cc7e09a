import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { storedUploads } from './support/backends.ts';
import { loopedJfk } from './support/audio.ts';
import { jobForm, requireModel, startServer, waitForJob } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

describe('cancelling jobs', () => {
  let server: TestServer;
  let long: Blob;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '1' });
    // About a minute of speech: it keeps the only worker busy while the test looks.
    long = (await loopedJfk(6)).blob;
  });
  after(() => server.close());

  test('a pending job is canceled, never runs, and a running one is stopped so that its worker takes the next job', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client, dataDir } = server;
    const running = ((await client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    await waitForJob(client, running, ['processing']);
    const queued = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;

    const canceledPending = await client.post(`/jobs/${queued}/cancel`);
    assert.equal(canceledPending.status, 200);
    const pendingView = canceledPending.json as JobBody;
    assert.equal(pendingView.status, 'canceled');
    assert.equal(pendingView.attempts, 0, 'a job canceled while pending never ran');
    assert.equal(pendingView.error?.code, 'canceled');
    assert.ok(!(await storedUploads(dataDir)).includes(queued), 'the upload of a canceled job is deleted');

    const canceledRunning = await client.post(`/jobs/${running}/cancel`);
    assert.equal(canceledRunning.status, 200);
    assert.equal((canceledRunning.json as JobBody).status, 'canceled');

    // The one worker slot was freed: a new job runs to the end.
    const next = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    assert.equal((await waitForJob(client, next, ['completed', 'failed'])).status, 'completed');

    for (const id of [queued, running]) {
      const job = (await client.get(`/jobs/${id}`)).json as JobBody;
      assert.equal(job.status, 'canceled', 'the record is kept, and a stopped worker did not overwrite it');
      for (const result of ['result', 'transcript', 'transcript/verbose', 'transcript/text', 'transcript/srt', 'transcript/vtt']) {
        const refused = await client.get(`/jobs/${id}/${result}`);
        assert.equal(refused.status, 409, result);
        assert.equal((refused.json as { code: string }).code, 'job_not_completed', result);
      }
    }
    assert.equal(((await client.get(`/jobs/${queued}`)).json as JobBody).attempts, 0, 'the canceled pending job was never claimed');
    assert.deepEqual(await readdir(path.join(dataDir, 'work')), [], 'no work files are left behind');
  });

  test('cancelling a finished job is refused with 409 and changes nothing', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
    const refused = await client.post(`/jobs/${id}/cancel`);
    assert.equal(refused.status, 409);
    assert.equal((refused.json as { code: string }).code, 'job_finished');
    assert.equal(((await client.get(`/jobs/${id}`)).json as JobBody).status, 'completed');
    assert.equal((await client.get(`/jobs/${id}/result`)).status, 200);
  });

  test('cancelling a job that does not exist is 404, and a malformed id is 400', async () => {
    const { client } = server;
    const missing = await client.post('/jobs/00000000-0000-4000-8000-000000000000/cancel');
    assert.equal(missing.status, 404);
    assert.equal((missing.json as { code: string }).code, 'job_not_found');
    assert.equal((await client.post('/jobs/not-a-uuid/cancel')).status, 400);
  });
});

describe('a full queue', () => {
  let server: TestServer;
  let long: Blob;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_MAX_PENDING_JOBS: '1' });
    long = (await loopedJfk(6)).blob;
  });
  after(() => server.close());

  test('refuses a submission past the pending limit with 503 and Retry-After, and accepts again once there is room', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client, dataDir } = server;
    const running = ((await client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    await waitForJob(client, running, ['processing']);
    const waiting = await client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(waiting.status, 202);

    const refused = await client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(refused.status, 503);
    assert.equal((refused.json as { code: string }).code, 'queue_full');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const refusedUrl = await client.post('/jobs/from-url', { body: JSON.stringify({ url: 'https://example.com/a.ogg' }), headers: { 'content-type': 'application/json' } });
    assert.equal(refusedUrl.status, 503);
    assert.equal((refusedUrl.json as { code: string }).code, 'queue_full');
    const uploads = await storedUploads(dataDir);
    assert.deepEqual(uploads.sort(), [running, (waiting.json as JobBody).id].sort(), 'the refused upload was not stored');

    assert.equal((await client.post(`/jobs/${(waiting.json as JobBody).id}/cancel`)).status, 200);
    const accepted = await client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(accepted.status, 202);
    assert.equal((await client.post(`/jobs/${running}/cancel`)).status, 200);
    assert.equal((await waitForJob(client, (accepted.json as JobBody).id, ['completed', 'failed'])).status, 'completed');
  });
});
