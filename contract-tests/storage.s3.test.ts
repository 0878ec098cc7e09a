/**
 * Uploads in an S3 bucket (moto), and the roles, through real processes: a clip streamed to the bucket and
 * transcribed from it with nothing of it on the API node's disk; deletion removing the object; a bucket that
 * goes away (uploads 503, jobs retried with `storage_unavailable` until it is back); an API node killed
 * mid-upload (no job, and its unfinished upload swept); an `api` and a `worker` process sharing one data
 * directory (SQLite, local folders), the API one without models.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { openDatabase } from '../src/jobs/database.ts';
import { ON_POSTGRES } from './support/backends.ts';
import { jobForm, requireModel, startServer, tempDir, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody } from './support/harness.ts';
import { MOTO, requireMoto, startS3Server } from './support/s3-server.ts';
import type { S3Server } from './support/s3-server.ts';
import { startServerProcess } from './support/server-process.ts';
import type { ServerProcess } from './support/server-process.ts';

const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';

/** The files under `dir` besides the database, once the worker's clean-up after its last job has run. */
async function filesLeft(dir: string): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const files = (await filesIn(dir)).filter((file) => !file.startsWith('cesar.db'));
    if (files.length === 0 || Date.now() > deadline) {
      return files;
    }
    await sleep(100);
  }
}

/** Every file under `dir`, relative to it. */
async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name))).sort();
}

async function jobCount(dataDir: string): Promise<number> {
  const db = await openDatabase(path.join(dataDir, 'cesar.db'));
  try {
    return (await db.read.get<{ n: number }>('SELECT COUNT(*) AS n FROM jobs'))?.n ?? -1;
  } finally {
    await db.close();
  }
}

const bucketOf = (url: string): string => new URL(url).host;

describe('uploads in an S3 bucket', () => {
  let s3: S3Server | null = null;
  const dirs: string[] = [];
  const processes: ServerProcess[] = [];
  const newDir = async (): Promise<string> => {
    const dir = await tempDir('cesar-s3-');
    dirs.push(dir);
    return dir;
  };
  const start = async (dataDir: string, env: Record<string, string>): Promise<ServerProcess> => {
    const server = await startServerProcess(dataDir, env);
    processes.push(server);
    return server;
  };
  before(async () => {
    if (existsSync(MOTO)) {
      s3 = await startS3Server();
    }
  });
  after(async () => {
    for (const server of processes) {
      server.signal('SIGKILL');
      await server.exited;
    }
    await s3?.stop();
    for (const dir of dirs) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a clip is streamed to the bucket and transcribed from it; nothing of it lands on the node\'s disk', async (t) => {
    if (!requireMoto(t) || !requireModel(t) || !s3) {
      return;
    }
    const url = await s3.createBucket('node');
    const dataDir = await newDir();
    const server = await start(dataDir, { CESAR_STORAGE_URL: url, ...s3.env });
    const submitted = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { model: TEST_MODEL }) });
    assert.equal(submitted.status, 202);
    const { id } = submitted.json as JobBody;
    const done = await waitForJob(server.client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(words((await server.client.get(`/jobs/${id}/result`)).text), JFK.split(' '));
    const fetched = server.logs.find((line) => line.msg === 'job started' && line.job_id === id);
    assert.ok(fetched, 'the job ran in this process');
    assert.deepEqual(await filesLeft(dataDir), [], 'the upload went to the bucket, and the worker deleted its temp copy');
    assert.deepEqual(await s3.keys(bucketOf(url)), [], 'a completed job\'s upload is removed from the bucket');
  });

  test('an upload is kept in the bucket until its job is deleted; a bucket that is down refuses uploads with 503 and creates no job', async (t) => {
    if (!requireMoto(t) || !requireModel(t) || !s3) {
      return;
    }
    const url = await s3.createBucket('api');
    // An API node: the job stays pending, its upload in the bucket.
    const api = await startServer({ CESAR_STORAGE_URL: url, CESAR_ROLE: 'api', ...s3.env });
    try {
      const submitted = await api.client.post('/jobs', { body: await jobForm('jfk.ogg') });
      assert.equal(submitted.status, 202);
      const { id } = submitted.json as JobBody;
      assert.deepEqual(await s3.keys(bucketOf(url)), [`api/uploads/${id}`]);
      assert.deepEqual(await filesIn(api.dataDir).then((files) => files.filter((file) => !file.startsWith('cesar.db'))), []);
      assert.equal((await api.client.delete(`/jobs/${id}`)).status, 204);
      assert.deepEqual(await s3.keys(bucketOf(url)), [], 'deleting the job removed its object');

      await s3.pause();
      try {
        const refused = await api.client.post('/jobs', { body: await jobForm('jfk.ogg') });
        assert.equal(refused.status, 503);
        assert.equal((refused.json as { code?: string }).code, 'storage_unavailable');
        assert.ok(Number(refused.headers.get('retry-after')) >= 1);
        assert.equal(((await api.client.get('/jobs')).json as { jobs: unknown[] }).jobs.length, 0, 'no job without its audio');
      } finally {
        await s3.resume();
      }
      assert.deepEqual(await s3.keys(bucketOf(url)), []);
    } finally {
      await api.close();
    }
  });

  test('a job whose bucket is unreachable fails with storage_unavailable, is retried, and completes once the bucket is back', async (t) => {
    if (!requireMoto(t) || !requireModel(t) || !s3) {
      return;
    }
    const url = await s3.createBucket('outage');
    const dataDir = await newDir();
    const api = await start(dataDir, { CESAR_STORAGE_URL: url, CESAR_ROLE: 'api', ...s3.env });
    const submitted = await api.client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(submitted.status, 202);
    const { id } = submitted.json as JobBody;
    await s3.pause();
    // A worker node that starts while the bucket is down; it shares the API node's SQLite database, so its data
    // directory, but reads the upload from the bucket.
    const worker = await start(dataDir, { CESAR_STORAGE_URL: url, CESAR_ROLE: 'worker', CESAR_RETRY_BASE_MS: '500', CESAR_MAX_ATTEMPTS: '10', ...s3.env });
    try {
      const failed = await worker.waitForLog((line) => line.msg === 'job attempt failed; will retry' && line.job_id === id);
      assert.equal(failed.code, 'storage_unavailable');
      const pending = (await api.client.get(`/jobs/${id}`)).json as JobBody;
      assert.notEqual(pending.status, 'failed');
    } finally {
      await s3.resume();
    }
    const done = await waitForJob(api.client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(words((await api.client.get(`/jobs/${id}/result`)).text), JFK.split(' '));
    assert.ok(worker.logs.some((line) => line.msg === 'job completed' && line.job_id === id));
    assert.deepEqual(await s3.keys(bucketOf(url)), []);
  });

  test('an API node killed mid-upload leaves no job, and its unfinished upload is removed by the sweep', async (t) => {
    if (!requireMoto(t) || !s3) {
      return;
    }
    const url = await s3.createBucket('killed');
    const dataDir = await newDir();
    const api = await start(dataDir, { CESAR_STORAGE_URL: url, CESAR_ROLE: 'api', ...s3.env });
    const boundary = 'cesar-boundary';
    const request = http.request(new URL('/jobs', api.client.baseUrl), {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    request.on('error', () => undefined);
    request.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
    // More than two parts, so that the bucket holds an unfinished multipart upload; the body never ends.
    for (let i = 0; i < 12; i++) {
      request.write(randomBytes(1024 * 1024));
    }
    const deadline = Date.now() + 30_000;
    while (!(await s3.keys(bucketOf(url))).some((key) => key.endsWith('(unfinished upload)'))) {
      assert.ok(Date.now() < deadline, 'the upload never reached the bucket');
      await sleep(100);
    }
    api.signal('SIGKILL');
    await api.exited;
    request.destroy();
    assert.equal(await jobCount(dataDir), 0, 'no job row without its audio');
    assert.equal((await s3.keys(bucketOf(url))).length, 1, 'the killed node left its unfinished upload behind');

    await sleep(1100);
    // The next node's sweep removes what no job owns once older than CESAR_ORPHAN_MIN_AGE_SECONDS.
    const next = await startServer({ CESAR_DATA_DIR: dataDir, CESAR_STORAGE_URL: url, CESAR_ROLE: 'api', CESAR_ORPHAN_MIN_AGE_SECONDS: '1', ...s3.env });
    try {
      assert.deepEqual(await s3.keys(bucketOf(url)), []);
      assert.ok(next.logs.some((line) => line.includes('files no job needs were removed')));
    } finally {
      await next.close();
    }
  });
});

describe(`roles on one machine (${ON_POSTGRES ? 'PostgreSQL, S3' : 'SQLite, local folders'})`, () => {
  test('an api process without models and a worker process on one data directory complete a job together', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const dataDir = await tempDir('cesar-roles-');
    const noModels = await tempDir('cesar-no-models-');
    const started: ServerProcess[] = [];
    try {
      const api = await startServerProcess(dataDir, { CESAR_ROLE: 'api', CESAR_MODELS_DIR: noModels });
      started.push(api);
      const health = await api.client.get('/health');
      assert.equal(health.status, 200, health.text);
      assert.equal((health.json as { role?: string }).role, 'api');
      const submitted = await api.client.post('/jobs', { body: await jobForm('jfk.ogg') });
      assert.equal(submitted.status, 202, submitted.text);
      const { id } = submitted.json as JobBody;
      await sleep(1500);
      assert.equal(((await api.client.get(`/jobs/${id}`)).json as JobBody).status, 'pending', 'an API node runs no job');

      const worker = await startServerProcess(dataDir, { CESAR_ROLE: 'worker' });
      started.push(worker);
      const done = await waitForJob(api.client, id, ['completed', 'failed']);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      assert.deepEqual(words((await api.client.get(`/jobs/${id}/result`)).text), JFK.split(' '));
      assert.ok(worker.logs.some((line) => line.msg === 'job completed' && line.job_id === id));
      // The OpenAI-compatible route too: the API node waits for the job the worker runs.
      const openai = await api.client.post('/v1/audio/transcriptions', { body: await jobForm('jfk.ogg', { model: 'whisper-1' }) });
      assert.equal(openai.status, 200, openai.text);
      assert.deepEqual(words((openai.json as { text: string }).text), JFK.split(' '));

      const workerHealth = await worker.client.get('/health');
      assert.equal(workerHealth.status, 200);
      assert.equal((workerHealth.json as { role?: string }).role, 'worker');
      assert.equal((await worker.client.get('/health/live')).status, 200);
      assert.equal((await fetch(new URL('/jobs', worker.client.baseUrl))).status, 404, 'a worker node serves no API');
      assert.deepEqual(await filesLeft(dataDir), [], 'the upload and the work files are gone');
    } finally {
      for (const server of started) {
        server.signal('SIGTERM');
        await server.exited;
      }
      await rm(dataDir, { recursive: true, force: true });
      await rm(noModels, { recursive: true, force: true });
    }
  });
});
