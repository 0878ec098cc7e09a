import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { jobForm, modelsDir, requireModel, startServer, TEST_MODEL, tempDir, waitForJob } from '../support/harness.ts';
import type { JobBody, TestServer } from '../support/harness.ts';

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
