import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../src/audio/ffmpeg.ts';
import { FIXTURES, jobForm, requireModel, startServer, tempDir, waitForJob } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

describe('a busy server', () => {
  let server: TestServer;
  let longAudio: string;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '2' });
    // One minute of real speech: long enough that both workers are decoding while we look.
    longAudio = path.join(await tempDir(), 'long.ogg');
    await promisify(execFile)(bundledFfmpegPath(), ['-loglevel', 'error', '-stream_loop', '5', '-i', path.join(FIXTURES, 'jfk.ogg'), '-c', 'copy', longAudio]);
  });
  after(() => server.close());

  test('accepts a job while two others run, and health answers while both workers decode', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const { readFile } = await import('node:fs/promises');
    const long = new Blob([await readFile(longAudio)]);
    const first = ((await client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    const second = ((await client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    await waitForJob(client, first, ['processing']);
    await waitForJob(client, second, ['processing']);

    const third = await client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(third.status, 202);
    assert.equal((third.json as JobBody).status, 'pending', 'queued behind the two running jobs');

    let healthChecks = 0;
    for (;;) {
      const [one, two] = await Promise.all([client.get(`/jobs/${first}`), client.get(`/jobs/${second}`)]);
      if ((one.json as JobBody).status !== 'processing' || (two.json as JobBody).status !== 'processing') {
        break;
      }
      assert.equal((await client.get('/health')).status, 200);
      healthChecks++;
    }
    assert.ok(healthChecks > 0, 'health was asked while both jobs were decoding');
    for (const id of [first, second, (third.json as JobBody).id]) {
      assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
    }
  });
});
