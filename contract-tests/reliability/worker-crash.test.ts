import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { jobForm, modelsDir, requireModel, startServer, TEST_MODEL, tempDir, waitForJob } from '../support/harness.ts';
import type { JobBody, TestServer } from '../support/harness.ts';
import { manualClock } from '../support/manual-clock.ts';

/**
 * A models directory with the real test model and a model named `broken` whose tokens file is garbage: the
 * engine reads it natively and ends the whole process (`_Exit(255)`, see docs/engine.md), every time.
 */
async function modelsWithABrokenOne(real: string): Promise<string> {
  const dir = await tempDir('cesar-models-');
  const source = path.join(real, `sherpa-onnx-whisper-${TEST_MODEL}`);
  await symlink(source, path.join(dir, `sherpa-onnx-whisper-${TEST_MODEL}`));
  await symlink(path.join(real, 'silero_vad.onnx'), path.join(dir, 'silero_vad.onnx'));
  const broken = path.join(dir, 'sherpa-onnx-whisper-broken');
  await mkdir(broken);
  for (const part of ['encoder', 'decoder']) {
    await symlink(path.join(source, `${TEST_MODEL}-${part}.int8.onnx`), path.join(broken, `broken-${part}.int8.onnx`));
  }
  await writeFile(path.join(broken, 'broken-tokens.txt'), 'these are\nnot tokens\n');
  return dir;
}

describe('a worker process that dies natively', () => {
  let server: TestServer;
  let models: string;
  before(async () => {
    const real = modelsDir();
    if (real === null) {
      return;
    }
    models = await modelsWithABrokenOne(real);
    server = await startServer({ CESAR_MODELS_DIR: models, CESAR_MAX_WORKERS: '1', CESAR_MAX_ATTEMPTS: '3', CESAR_RETRY_BASE_MS: '50' });
  });
  after(async () => {
    await server?.close();
    if (models) {
      await rm(models, { recursive: true, force: true });
    }
  });

  test('costs only its own job, which ends failed after its attempts instead of looping, while the server keeps serving', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const poison = await client.post('/jobs', { body: await jobForm('jfk.ogg', { model: 'broken' }) });
    assert.equal(poison.status, 202);
    const poisonId = (poison.json as JobBody).id;
    const good = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;

    const failed = await waitForJob(client, poisonId, ['completed', 'failed']);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'worker_crashed');
    assert.equal(failed.attempts, 3, 'each attempt killed its worker; the job stopped at max_attempts');
    assert.equal(failed.next_attempt_at, null);
    const retries = server.logs.filter((line) => line.includes('job attempt failed; will retry') && line.includes(poisonId));
    assert.equal(retries.length, 2);

    assert.equal((await waitForJob(client, good, ['completed', 'failed'])).status, 'completed');
    assert.equal((await client.get('/health')).status, 200);
    // The one worker died three times; the pool started another each time, and it transcribes.
    const after = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    assert.equal((await waitForJob(client, after, ['completed', 'failed'])).status, 'completed');
    assert.equal(server.service.dispatcher.running, 0);
  });
});

describe('a job whose attempt failed, on an injected clock', () => {
  const clock = manualClock();
  let server: TestServer;
  let models: string;
  before(async () => {
    const real = modelsDir();
    if (real === null) {
      return;
    }
    models = await modelsWithABrokenOne(real);
    server = await startServer({ CESAR_MODELS_DIR: models, CESAR_MAX_ATTEMPTS: '2', CESAR_RETRY_BASE_MS: '60000' }, clock);
  });
  after(async () => {
    await server?.close();
    if (models) {
      await rm(models, { recursive: true, force: true });
    }
  });

  test('shows its attempts, last error and next try time, and is not tried again before that time', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await jobForm('jfk.ogg', { model: 'broken' }) })).json as JobBody).id;
    // The clock stands still: after the crash the job waits, pending, for a retry time that does not come.
    let job = (await client.get(`/jobs/${id}`)).json as JobBody;
    while (!(job.status === 'pending' && job.attempts === 1)) {
      assert.notEqual(job.status, 'failed');
      await sleep(50);
      job = (await client.get(`/jobs/${id}`)).json as JobBody;
    }
    assert.equal(job.error?.code, 'worker_crashed');
    const nextTry = Date.parse(String(job.next_attempt_at));
    const delay = nextTry - clock.now();
    // 60 s base delay, ±25 % jitter.
    assert.ok(delay >= 45_000 && delay <= 75_000, `next try in ${delay} ms`);
    assert.equal(job.completed_at, null);

    assert.equal(await server.service.store.claim('probe', clock.now() + delay - 1, 1000), undefined, 'not claimable before its time');

    clock.advance(delay);
    const failed = await waitForJob(client, id, ['failed']);
    assert.equal(failed.attempts, 2);
    assert.equal(failed.error?.code, 'worker_crashed');
    assert.equal(failed.next_attempt_at, null);
  });
});
