import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, copyFile, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { jobForm, modelsDir, MULTILINGUAL_MODEL, requireModel, startServer, tempDir, TEST_MODEL, waitForJob } from './support/harness.ts';
import type { ContractClient } from './support/contract.ts';
import type { JobBody } from './support/harness.ts';

interface ModelBody {
  name: string;
  word_timestamps: boolean;
  loaded: boolean;
  size_bytes: number;
  files: string[];
  checksums: { file: string; size_bytes: number; sha256: string | null }[];
}

interface HealthBody {
  status: string;
  checks: { name: string; ok: boolean; detail: string }[];
  workers: { model: string | null; rss_bytes: number; peak_rss_bytes: number; jobs: number }[];
  workers_recycled: number;
}

async function listModels(client: ContractClient): Promise<ModelBody[]> {
  return ((await client.get('/models')).json as { models: ModelBody[] }).models;
}

/**
 * A models directory holding a copy of tiny.en under another name. `editEncoder` changes the copy of the
 * encoder (the decoder and VAD are links to the real files); `editTokens` the copy of the tokens file.
 */
async function modelsCopy(name: string, edits: { encoder?: (bytes: Buffer) => Buffer; tokens?: (file: string) => Promise<void> }): Promise<string> {
  const source = modelsDir() ?? '';
  const dir = await tempDir('cesar-models-');
  const target = path.join(dir, `sherpa-onnx-whisper-${name}`);
  await mkdir(target);
  const from = (file: string) => path.join(source, `sherpa-onnx-whisper-${TEST_MODEL}`, `${TEST_MODEL}-${file}`);
  const to = (file: string) => path.join(target, `${name}-${file}`);
  await writeFile(to('encoder.int8.onnx'), (edits.encoder ?? ((bytes) => bytes))(await readFile(from('encoder.int8.onnx'))));
  await symlink(from('decoder.int8.onnx'), to('decoder.int8.onnx'));
  if (edits.tokens) {
    await copyFile(from('tokens.txt'), to('tokens.txt'));
    await edits.tokens(to('tokens.txt'));
  } else {
    await symlink(from('tokens.txt'), to('tokens.txt'));
  }
  await symlink(path.join(source, 'silero_vad.onnx'), path.join(dir, 'silero_vad.onnx'));
  return dir;
}

/**
 * The sha256 of every model file by name: from the folder's SHA256SUMS when it has one (the shared models do),
 * else computed here, apart from the server's cache (a folder `cesar serve` or `npm test` filled).
 */
async function expectedChecksums(dir: string): Promise<Map<string, string>> {
  const listed = await readFile(path.join(dir, 'SHA256SUMS'), 'utf8').catch(() => null);
  if (listed !== null) {
    return new Map(
      listed
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/))
        .map(([sum, file]) => [path.basename(file ?? ''), sum ?? '']),
    );
  }
  const sums = new Map<string, string>();
  for (const file of await readdir(dir, { recursive: true })) {
    const full = path.join(dir, file);
    if ((await stat(full)).isFile()) {
      const hash = createHash('sha256');
      await pipeline(createReadStream(full), hash);
      sums.set(path.basename(file), hash.digest('hex'));
    }
  }
  return sums;
}

/** Replaces the value of one encoder metadata entry, byte for byte (same length), as an exporter might have written it. */
function withMetadata(key: string, from: string, to: string): (bytes: Buffer) => Buffer {
  return (bytes) => {
    const entry = Buffer.concat([Buffer.from([0x0a, key.length]), Buffer.from(key), Buffer.from([0x12, from.length]), Buffer.from(from)]);
    const at = bytes.indexOf(entry);
    assert.ok(at >= 0 && from.length === to.length, `metadata ${key}=${from} found in the encoder`);
    const copy = Buffer.from(bytes);
    copy.write(to, at + entry.length - from.length, 'latin1');
    return copy;
  };
}

describe('models and workers', () => {
  test('models lists sha256 checksums computed in the background, and which model the workers hold as they switch', async (t) => {
    if (!requireModel(t, MULTILINGUAL_MODEL)) {
      return;
    }
    const server = await startServer({ CESAR_MAX_WORKERS: '1' });
    try {
      const { client } = server;
      const sums = await expectedChecksums(modelsDir() ?? '');
      const first = await listModels(client);
      assert.ok(first.every((model) => !model.loaded), 'no worker has loaded a model yet');
      let models = first;
      while (models.some((model) => model.checksums.some((entry) => entry.sha256 === null))) {
        await sleep(100);
        models = await listModels(client);
      }
      for (const model of models) {
        assert.deepEqual(model.checksums.map((entry) => entry.file), model.files);
        assert.equal(model.checksums.reduce((sum, entry) => sum + entry.size_bytes, 0), model.size_bytes);
        for (const entry of model.checksums) {
          assert.equal(entry.sha256, sums.get(entry.file), `${entry.file} matches SHA256SUMS`);
        }
      }

      for (const [model, loaded] of [[TEST_MODEL, TEST_MODEL], [MULTILINGUAL_MODEL, MULTILINGUAL_MODEL], [TEST_MODEL, TEST_MODEL]] as const) {
        const id = ((await client.post('/jobs', { body: await jobForm('ldc93s1.ogg', { model }) })).json as JobBody).id;
        assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
        const now = await listModels(client);
        assert.deepEqual(now.filter((entry) => entry.loaded).map((entry) => entry.name), [loaded], `after a ${model} job`);
      }
      const health = (await client.get('/health')).json as HealthBody;
      assert.equal(health.workers.length, 1);
      assert.equal(health.workers[0]?.jobs, 3, 'one worker kept running and switched models');
      assert.equal(health.workers_recycled, 0);
    } finally {
      await server.close();
    }
  });

  test('a worker process is recycled after the configured number of jobs, and the next job runs in a fresh one', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_WORKER_MAX_JOBS: '2' });
    try {
      const { client } = server;
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const id = ((await client.post('/jobs', { body: await jobForm('ldc93s1.ogg') })).json as JobBody).id;
        assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
        const health = (await client.get('/health')).json as HealthBody;
        counts.push(health.workers.reduce((sum, worker) => sum + worker.jobs, 0));
        assert.ok(health.workers.every((worker) => worker.rss_bytes > 0 && worker.peak_rss_bytes >= worker.rss_bytes));
      }
      assert.deepEqual(counts, [1, 0, 1], 'the worker that ran two jobs was replaced by one that has run none');
      assert.equal(((await client.get('/health')).json as HealthBody).workers_recycled, 1);
    } finally {
      await server.close();
    }
  });

  test('a worker process is recycled once its resident memory passes the configured bound', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    // 1 MB: any worker that has loaded a model is past it, so each job leaves a fresh process behind.
    const server = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_WORKER_MAX_JOBS: '0', CESAR_WORKER_MAX_RSS_MB: '1' });
    try {
      const { client } = server;
      for (let i = 1; i <= 2; i++) {
        const id = ((await client.post('/jobs', { body: await jobForm('ldc93s1.ogg') })).json as JobBody).id;
        assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
        assert.equal(((await client.get('/health')).json as HealthBody).workers_recycled, i);
      }
    } finally {
      await server.close();
    }
  });

  test('liveness answers 200 even when the service is not ready', async () => {
    const server = await startServer({ CESAR_MODELS_DIR: '/nonexistent/cesar-models' });
    try {
      assert.equal((await server.client.get('/health')).status, 503);
      const live = await server.client.get('/health/live');
      assert.equal(live.status, 200);
      assert.equal((live.json as { status: string }).status, 'alive');
    } finally {
      await server.close();
    }
  });

  test('word timestamps are refused with 422 for a model without alignment heads, and segments still work', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    // A byte-for-byte copy of tiny.en whose encoder metadata says it has no alignment heads.
    const dir = await modelsCopy('plain', { encoder: withMetadata('n_alignment_heads', '8', '0') });
    const server = await startServer({ CESAR_MODELS_DIR: dir, CESAR_DEFAULT_MODEL: 'plain' });
    try {
      const { client } = server;
      const [plain] = await listModels(client);
      assert.equal(plain?.name, 'plain');
      assert.equal(plain.word_timestamps, false);

      const refused = await client.post('/jobs', { body: await jobForm('ldc93s1.ogg', { timestamp_granularity: 'word' }) });
      assert.equal(refused.status, 422);
      assert.equal((refused.json as { code: string }).code, 'word_timestamps_unsupported');

      const accepted = await client.post('/jobs', { body: await jobForm('ldc93s1.ogg', { timestamp_granularity: 'segment' }) });
      assert.equal(accepted.status, 202);
      const id = (accepted.json as JobBody).id;
      assert.equal((accepted.json as JobBody).timestamp_granularity, 'segment');
      assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');
      const verbose = (await client.get(`/jobs/${id}/result?format=verbose_json`)).json as { text: string; segments: { words: unknown[] }[] };
      assert.match(verbose.text, /greasy/i);
      assert.ok(verbose.segments.every((segment) => segment.words.length === 0), 'no word is faked');
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('model files that would crash the engine are caught before it: a bad tokens file, a metadata value that is not a number', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const badTokens = await modelsCopy('badtokens', { tokens: (file) => appendFile(file, '<|endoftext|> 50256\n') });
    const badMetadata = await modelsCopy('badmeta', { encoder: withMetadata('n_text_ctx', '448', 'abc') });
    try {
      for (const [dir, name, reason] of [[badTokens, 'badtokens', /tokens file line 50257/], [badMetadata, 'badmeta', /n_text_ctx/]] as const) {
        const server = await startServer({ CESAR_MODELS_DIR: dir, CESAR_DEFAULT_MODEL: name });
        try {
          const { client } = server;
          const health = await client.get('/health');
          assert.equal(health.status, 503);
          assert.match((health.json as HealthBody).checks.find((check) => check.name === 'default_model')?.detail ?? '', reason);
          assert.deepEqual(await listModels(client), []);
          const refused = await client.post('/jobs', { body: await jobForm('ldc93s1.ogg') });
          assert.equal(refused.status, 422);
          assert.equal((refused.json as { code: string }).code, 'model_not_installed');
        } finally {
          await server.close();
        }
      }
    } finally {
      await rm(badTokens, { recursive: true, force: true });
      await rm(badMetadata, { recursive: true, force: true });
    }
  });
});
