import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';

import { storedUploads } from './support/backends.ts';
import { jobForm, MULTILINGUAL_MODEL, requireModel, startServer, TEST_MODEL, waitForJob } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  installed_models?: string[];
  supported_languages?: string[];
}

describe('submitting bad input', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_UPLOAD_SIZE_MB: '1' });
  });
  after(() => server.close());

  const problem = (json: unknown): Problem => json as Problem;

  test('a body that is neither a form nor JSON is refused with 415', async () => {
    const response = await server.client.post('/jobs', {
      body: 'model=tiny.en',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(response.status, 415);
    assert.equal(response.contentType, 'application/problem+json');
    assert.equal(problem(response.json).code, 'unsupported_content_type');
  });

  test('a form without a file is refused with missing_file', async () => {
    const form = new FormData();
    form.append('model', TEST_MODEL);
    const response = await server.client.post('/jobs', { body: form });
    assert.equal(response.status, 400);
    assert.equal(problem(response.json).code, 'missing_file');
  });

  test('a form with an unknown field is refused and names the field', async () => {
    const response = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { speaker_count: '2' }) });
    assert.equal(response.status, 400);
    assert.equal(problem(response.json).code, 'unknown_field');
    assert.match(problem(response.json).detail ?? '', /speaker_count/);
  });

  test('a form with two files is refused with too_many_files', async () => {
    const form = await jobForm('jfk.ogg');
    form.append('file', new Blob(['second']), 'second.wav');
    const response = await server.client.post('/jobs', { body: form });
    assert.equal(response.status, 400);
    assert.equal(problem(response.json).code, 'too_many_files');
  });

  test('an empty file is refused with empty_file', async () => {
    const response = await server.client.post('/jobs', { body: await jobForm('empty.wav', {}, new Blob([])) });
    assert.equal(response.status, 400);
    assert.equal(problem(response.json).code, 'empty_file');
  });

  test('a field that breaks the schema is refused with invalid_request', async () => {
    const response = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { task: 'summarize' }) });
    assert.equal(response.status, 400);
    assert.equal(problem(response.json).code, 'invalid_request');
  });

  test('an upload over the size limit is refused with 413 and not stored', async () => {
    const big = new Blob([new Uint8Array(1024 * 1024 + 10)]);
    const response = await server.client.post('/jobs', { body: await jobForm('big.wav', {}, big) });
    assert.equal(response.status, 413);
    assert.equal(problem(response.json).code, 'upload_too_large');
    assert.deepEqual(await storedUploads(server.dataDir), []);
  });

  test('a model that is not installed is refused with 422 and the installed models', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const response = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { model: 'large-v9' }) });
    assert.equal(response.status, 422);
    const body = problem(response.json);
    assert.equal(body.code, 'model_not_installed');
    assert.ok(body.installed_models?.includes(TEST_MODEL));
    assert.deepEqual(await storedUploads(server.dataDir), [], 'the refused upload is deleted');
  });

  test('a language the model does not speak is refused before it reaches the engine', async (t) => {
    if (!requireModel(t, MULTILINGUAL_MODEL)) {
      return;
    }
    const english = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { model: TEST_MODEL, language: 'de' }) });
    assert.equal(english.status, 422);
    assert.equal(problem(english.json).code, 'unsupported_language');
    assert.deepEqual(problem(english.json).supported_languages, ['en']);

    const unknown = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { model: MULTILINGUAL_MODEL, language: 'xx' }) });
    assert.equal(unknown.status, 422);
    assert.equal(problem(unknown.json).code, 'unsupported_language');
  });

  test('translation with an English-only model is refused', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const response = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { model: TEST_MODEL, task: 'translate' }) });
    assert.equal(response.status, 422);
    assert.equal(problem(response.json).code, 'unsupported_task');
  });

  test('a file that is not audio ends the job failed with undecodable_media, and the server keeps serving', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const tmpBefore = new Set(await readdir(os.tmpdir()));
    const submitted = await server.client.post('/jobs', { body: await jobForm('not-audio.mp3') });
    assert.equal(submitted.status, 202);
    const job = await waitForJob(server.client, (submitted.json as JobBody).id, ['completed', 'failed']);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'undecodable_media');
    assert.doesNotMatch(job.error?.message ?? '', /ffmpeg|\/tmp|uploads/, 'no command line or server path leaks');
    assert.equal(job.attempts, 1, 'a permanent failure is not retried');

    const result = await server.client.get(`/jobs/${job.id}/result`);
    assert.equal(result.status, 409);
    assert.equal(problem(result.json).code, 'job_not_completed');
    assert.equal((await server.client.get('/health')).status, 200);
    const created = (await readdir(os.tmpdir())).filter((name) => !tmpBefore.has(name));
    assert.deepEqual(created, [], 'nothing is written outside the data directory');
  });

  test('a malformed job id is refused with 400 on every job operation', async () => {
    for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['GET', '/result']] as const) {
      const response = await server.client.request(method, `/jobs/not-a-uuid${suffix}`);
      assert.equal(response.status, 400, `${method} /jobs/not-a-uuid${suffix}`);
      assert.equal(problem(response.json).code, 'invalid_request');
    }
  });

  test('an unknown result format is refused with 400', async () => {
    const response = await server.client.get('/jobs/00000000-0000-4000-8000-000000000000/result?format=docx');
    assert.equal(response.status, 400);
  });
});
