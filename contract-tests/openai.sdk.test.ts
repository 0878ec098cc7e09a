/**
 * The OpenAI-compatible endpoints driven by OpenAI's official `openai` npm package, its base URL pointed at a test
 * server. Every answer is also checked against the spec (see `support/openai-client.ts`).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import OpenAI, { toFile } from 'openai';
import type { Uploadable } from 'openai/uploads';

import { storedUploads } from './support/backends.ts';
import { loopedJfk } from './support/audio.ts';
import { FIXTURES, jobForm, MULTILINGUAL_MODEL, requireModel, startServer, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';
import { openAIClient } from './support/openai-client.ts';
import type { CheckedOpenAI } from './support/openai-client.ts';

const KEY = 'openai-test-key-0123456789';

async function audio(name: string): Promise<Uploadable> {
  return toFile(await readFile(path.join(FIXTURES, name)), name);
}

interface VerboseBody {
  task: string;
  language: string;
  duration: number;
  text: string;
  segments?: { id: number; seek: number; start: number; end: number; text: string; tokens: number[]; temperature: number; avg_logprob: number; compression_ratio: number; no_speech_prob: number }[];
  words?: { word: string; start: number; end: number }[];
}

/** The same audio through the job API: its plain-text transcript. */
async function jobApiText(server: TestServer, name: string, fields: Record<string, string> = {}): Promise<string> {
  const created = await server.client.post('/jobs', { body: await jobForm(name, fields) });
  const id = (created.json as JobBody).id;
  assert.equal((await waitForJob(server.client, id, ['completed', 'failed'])).status, 'completed');
  return (await server.client.get(`/jobs/${id}/result?format=txt`)).text;
}

async function expectError(call: Promise<unknown>, status: number, code: string, param: string | null): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await call.then(
    () => assert.fail(`expected a ${status}`),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof OpenAI.APIError, `expected an APIError, got ${String(error)}`);
  assert.equal(error.status, status, error.message);
  assert.equal(error.code, code);
  assert.equal(error.param, param);
  assert.equal(typeof error.type, 'string');
  return error;
}

describe('OpenAI SDK: transcriptions', () => {
  let server: TestServer;
  let openai: CheckedOpenAI;
  before(async () => {
    server = await startServer();
    openai = openAIClient(server.client.baseUrl);
  });
  after(async () => {
    try {
      await openai.checked();
    } finally {
      await server.close();
    }
  });

  test('json (the default) through whisper-1: the same words as the job API, and the job is in GET /jobs', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { data, response } = await openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }).withResponse();
    assert.deepEqual(words(data.text), words(await jobApiText(server, 'jfk.ogg')));
    assert.ok(words(data.text).includes('country'));
    const jobId = response.headers.get('cesar-job-id') ?? '';
    const job = (await server.client.get(`/jobs/${jobId}`)).json as JobBody;
    assert.equal(job.status, 'completed');
    assert.equal(job.model, TEST_MODEL);
    const listed = (await server.client.get('/jobs?limit=50')).json as { jobs: JobBody[] };
    assert.ok(listed.jobs.some((listedJob) => listedJob.id === jobId));
    assert.equal(response.headers.get('cesar-unused-parameters'), null);
    await openai.checked();
  });

  test('text, srt and vtt come back as text; an installed model name is accepted as it is', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const text = await openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: TEST_MODEL, response_format: 'text' });
    assert.ok(words(text).includes('country'));
    const srt = await openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: TEST_MODEL, response_format: 'srt' });
    assert.match(srt, /^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n/);
    const vtt = await openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: TEST_MODEL, response_format: 'vtt' });
    assert.match(vtt, /^WEBVTT\n\n00:00:\d\d\.\d{3} --> /);
    assert.deepEqual(words(srt.replace(/^\d+$|^.*-->.*$/gm, '')), words(text));
    await openai.checked();
  });

  test('verbose_json: OpenAI full language name, segment fields, and words only when asked', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const file = await readFile(path.join(FIXTURES, 'jfk.ogg'));
    const create = async (granularities?: ('word' | 'segment')[]): Promise<VerboseBody> =>
      (await openai.client.audio.transcriptions.create({
        file: await toFile(file, 'jfk.ogg'),
        model: 'whisper-1',
        response_format: 'verbose_json',
        ...(granularities ? { timestamp_granularities: granularities } : {}),
      })) as unknown as VerboseBody;
    const plain = await create();
    assert.equal(plain.task, 'transcribe');
    assert.equal(plain.language, 'english');
    assert.ok(Math.abs(plain.duration - 11.01) < 0.1, `duration ${plain.duration}`);
    assert.ok(plain.segments && plain.segments.length > 0);
    assert.equal(plain.words, undefined);
    let previousEnd = 0;
    for (const [index, segment] of plain.segments.entries()) {
      assert.equal(segment.id, index);
      assert.ok(segment.start >= previousEnd - 0.001 && segment.end >= segment.start && segment.end <= plain.duration);
      assert.equal(segment.seek, Math.round(segment.start * 100));
      assert.deepEqual(segment.tokens, []);
      assert.equal(segment.temperature, 0);
      assert.ok(segment.compression_ratio > 0.5 && segment.compression_ratio < 3, `compression_ratio ${segment.compression_ratio}`);
      previousEnd = segment.end;
    }
    assert.deepEqual(words(plain.segments.map((segment) => segment.text).join(' ')), words(plain.text));

    const segmentOnly = await create(['segment']);
    assert.deepEqual(segmentOnly.segments, plain.segments);
    assert.equal(segmentOnly.words, undefined);

    const wordOnly = await create(['word']);
    assert.equal(wordOnly.segments, undefined);
    assert.ok(wordOnly.words && wordOnly.words.length > 10);
    assert.deepEqual(words(wordOnly.words.map((word) => word.word).join(' ')), words(plain.text));
    for (const word of wordOnly.words) {
      assert.ok(word.end >= word.start && word.end <= plain.duration);
    }

    const both = await create(['word', 'segment']);
    assert.deepEqual(both.segments, plain.segments);
    assert.deepEqual(both.words, wordOnly.words);
    await openai.checked();
  });

  test("stream=true, read with the SDK's stream: a delta per segment, then one done whose text is the deltas'", async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { blob } = await loopedJfk(2);
    const stream = await openai.client.audio.transcriptions.create({
      file: await toFile(Buffer.from(await blob.arrayBuffer()), 'jfk-twice.ogg'),
      model: 'whisper-1',
      stream: true,
    });
    const deltas: string[] = [];
    const done: string[] = [];
    for await (const event of stream) {
      if (event.type === 'transcript.text.delta') {
        assert.equal(done.length, 0, 'no delta after done');
        deltas.push(event.delta);
      } else if (event.type === 'transcript.text.done') {
        done.push(event.text);
      }
    }
    assert.equal(done.length, 1);
    assert.ok(deltas.length >= 2, `${deltas.length} deltas`);
    assert.equal(deltas.join(''), done[0]);
    assert.equal(words(done[0] ?? '').filter((word) => word === 'country').length, 4);
    // The text format streams the same way.
    const textStream = await openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1', stream: true, response_format: 'text' });
    const textEvents: string[] = [];
    for await (const event of textStream) {
      textEvents.push(event.type);
    }
    assert.equal(textEvents.at(-1), 'transcript.text.done');
    await openai.checked();
  });

  test('prompt and temperature are accepted, not used, and named in Cesar-Unused-Parameters', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { data, response } = await openai.client.audio.transcriptions
      .create({ file: await audio('jfk.ogg'), model: 'whisper-1', prompt: 'Kennedy, inaugural address', temperature: 0.2 })
      .withResponse();
    assert.ok(words(data.text).includes('country'));
    assert.equal(response.headers.get('cesar-unused-parameters'), 'prompt, temperature');
    await openai.checked();
  });

  test('refusals in OpenAI error shape: word without verbose_json, stream with srt, an unknown model, a bad language, an unknown field', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    await expectError(
      openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1', response_format: 'json', timestamp_granularities: ['word'] }),
      400,
      'invalid_request',
      'timestamp_granularities',
    );
    await expectError(openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1', response_format: 'srt', stream: true }), 400, 'invalid_request', 'stream');
    const unknown = await expectError(openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-9' }), 404, 'model_not_found', 'model');
    assert.ok(unknown instanceof OpenAI.NotFoundError);
    assert.match(unknown.message, /whisper-9/);
    await expectError(openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: TEST_MODEL, language: 'de' }), 400, 'unsupported_language', 'language');
    await expectError(
      openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1', response_format: 'xml' as 'json' }),
      400,
      'invalid_request',
      'response_format',
    );
    await expectError(openai.client.audio.translations.create({ file: await audio('jfk.ogg'), model: TEST_MODEL }), 400, 'unsupported_task', 'model');
    await expectError(openai.client.audio.translations.create({ file: await audio('jfk.ogg'), model: 'whisper-9' }), 404, 'model_not_found', 'model');
    await expectError(
      openai.client.audio.transcriptions.create({ file: await audio('not-audio.mp3'), model: 'whisper-1' }),
      400,
      'undecodable_media',
      'file',
    );
    // Without the SDK: a field OpenAI does not define, and no file.
    const form = new FormData();
    form.append('model', 'whisper-1');
    form.append('file', new Blob([await readFile(path.join(FIXTURES, 'jfk.ogg'))]), 'jfk.ogg');
    form.append('chunking', 'auto');
    const unknownField = await server.client.post('/v1/audio/transcriptions', { body: form });
    assert.equal(unknownField.status, 400);
    assert.equal((unknownField.json as { error: { code: string } }).error.code, 'unknown_field');
    const noFile = new FormData();
    noFile.append('model', 'whisper-1');
    const missing = await server.client.post('/v1/audio/translations', { body: noFile });
    assert.deepEqual((missing.json as { error: object }).error, { message: 'The form needs a file in the field "file".', type: 'invalid_request_error', param: 'file', code: 'missing_file' });
    await openai.checked();
  });

  test('GET /v1/models lists whisper-1 and the installed models; GET /v1/models/{model} finds one or answers 404', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const ids = [];
    for await (const model of openai.client.models.list()) {
      assert.equal(model.object, 'model');
      assert.ok(Number.isInteger(model.created) && model.created > 1_500_000_000);
      ids.push(model.id);
    }
    assert.equal(ids[0], 'whisper-1');
    assert.ok(ids.includes(TEST_MODEL));
    const model = await openai.client.models.retrieve(TEST_MODEL);
    assert.equal(model.id, TEST_MODEL);
    assert.equal((await openai.client.models.retrieve('whisper-1')).owned_by, 'cesar');
    await expectError(openai.client.models.retrieve('whisper-9'), 404, 'model_not_found', 'model');
    await openai.checked();
  });
});

describe('OpenAI SDK: translations with the multilingual model', () => {
  let server: TestServer;
  let openai: CheckedOpenAI;
  before(async () => {
    server = await startServer({ CESAR_DEFAULT_MODEL: MULTILINGUAL_MODEL });
    openai = openAIClient(server.client.baseUrl);
  });
  after(async () => {
    try {
      await openai.checked();
    } finally {
      await server.close();
    }
  });

  test('French speech into English in json, text and verbose_json; the same words as a translate job', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const json = await openai.client.audio.translations.create({ file: await audio('fleurs-fr-000.ogg'), model: 'whisper-1' });
    const english = words(json.text);
    assert.ok(english.includes('the'), json.text);
    assert.deepEqual(english, words(await jobApiText(server, 'fleurs-fr-000.ogg', { task: 'translate' })));
    // The SDK types a translation's text formats as objects; the body is the text itself.
    const text = (await openai.client.audio.translations.create({ file: await audio('fleurs-fr-000.ogg'), model: MULTILINGUAL_MODEL, response_format: 'text' })) as unknown as string;
    assert.deepEqual(words(text), english);
    const verbose = (await openai.client.audio.translations.create({ file: await audio('fleurs-fr-000.ogg'), model: MULTILINGUAL_MODEL, response_format: 'verbose_json' })) as unknown as VerboseBody;
    assert.equal(verbose.task, 'translate');
    assert.equal(verbose.language, 'english');
    assert.ok(verbose.segments && verbose.segments.length > 0);
    const srt = (await openai.client.audio.translations.create({ file: await audio('fleurs-fr-000.ogg'), model: MULTILINGUAL_MODEL, response_format: 'srt' })) as unknown as string;
    assert.match(srt, /^1\n00:00:/);
    const vtt = (await openai.client.audio.translations.create({ file: await audio('fleurs-fr-000.ogg'), model: MULTILINGUAL_MODEL, response_format: 'vtt' })) as unknown as string;
    assert.match(vtt, /^WEBVTT\n/);
    // Asked to answer at once: the job, which then translates like the others.
    const accepted = (await openai.client.audio.translations.create({ file: await audio('fleurs-fr-000.ogg'), model: 'whisper-1' }, { headers: { Prefer: 'respond-async' } })) as unknown as JobBody;
    assert.equal((await waitForJob(server.client, accepted.id, ['completed', 'failed'])).status, 'completed');
    assert.deepEqual(words((await server.client.get(`/jobs/${accepted.id}/result`)).text), english);
    await openai.checked();
  });

  test('transcription with the multilingual model names the detected language in full', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const verbose = (await openai.client.audio.transcriptions.create({ file: await audio('fleurs-es-000.ogg'), model: 'whisper-1', response_format: 'verbose_json' })) as unknown as VerboseBody;
    assert.equal(verbose.language, 'spanish');
    const forced = (await openai.client.audio.transcriptions.create({ file: await audio('fleurs-es-000.ogg'), model: 'whisper-1', language: 'es', response_format: 'verbose_json' })) as unknown as VerboseBody;
    assert.equal(forced.language, 'spanish');
    await openai.checked();
  });
});

describe('OpenAI SDK: upload limit', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_UPLOAD_SIZE_MB: '1' });
  });
  after(() => server.close());

  test('a file over CESAR_MAX_UPLOAD_SIZE_MB is 413 in OpenAI error shape, and not stored', async () => {
    const openai = openAIClient(server.client.baseUrl);
    const big = await toFile(new Uint8Array(1024 * 1024 + 10), 'big.wav');
    await expectError(openai.client.audio.transcriptions.create({ file: big, model: 'whisper-1' }), 413, 'upload_too_large', 'file');
    await openai.checked();
    assert.deepEqual(await storedUploads(server.dataDir), []);
  });
});

describe('OpenAI SDK: API keys', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_API_KEYS: KEY });
  });
  after(() => server.close());

  test('a wrong key is 401 invalid_api_key; the right one works as a bearer token or in X-API-Key', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const wrong = openAIClient(server.client.baseUrl, 'wrong-key-0123456789');
    const refused = await expectError(wrong.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }), 401, 'invalid_api_key', null);
    assert.ok(refused instanceof OpenAI.AuthenticationError);
    await expectError(wrong.client.audio.translations.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }), 401, 'invalid_api_key', null);
    await expectError(wrong.client.models.list(), 401, 'invalid_api_key', null);
    await expectError(wrong.client.models.retrieve('whisper-1'), 401, 'invalid_api_key', null);
    await wrong.checked();

    const right = openAIClient(server.client.baseUrl, KEY);
    const { data, response } = await right.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }).withResponse();
    assert.ok(words(data.text).includes('country'));
    const jobId = response.headers.get('cesar-job-id') ?? '';
    assert.equal((await right.client.models.list()).data[0]?.id, 'whisper-1');
    await right.checked();
    // X-API-Key works on /v1 too; a bearer token is for /v1 only, the job API stays on X-API-Key.
    assert.equal((await server.client.get('/v1/models', { headers: { 'x-api-key': KEY } })).status, 200);
    const bearerOnJobs = await server.client.get(`/jobs/${jobId}`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(bearerOnJobs.status, 401);
    assert.equal(bearerOnJobs.contentType, 'application/problem+json');
    assert.equal((await server.client.get(`/jobs/${jobId}`, { headers: { 'x-api-key': KEY } })).status, 200);
  });
});

describe('OpenAI SDK: the queue behind the synchronous call', () => {
  let server: TestServer;
  let openai: CheckedOpenAI;
  let long: Blob;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_OPENAI_WAIT_SECONDS: '1' });
    openai = openAIClient(server.client.baseUrl);
    long = (await loopedJfk(6)).blob;
  });
  after(async () => {
    try {
      await openai.checked();
    } finally {
      await server.close();
    }
  });

  test('ahead of batch jobs; past the wait or with Prefer: respond-async it answers 202 with the job, which completes', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const running = ((await client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
    await waitForJob(client, running, ['processing']);
    const batch = [];
    for (let i = 0; i < 2; i++) {
      batch.push(((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id);
    }
    // Asked to answer at once: 202, and the job is first in the queue, ahead of the older batch jobs.
    const asyncJob = (await openai.client.audio.transcriptions.create(
      { file: await audio('jfk.ogg'), model: 'whisper-1' },
      { headers: { Prefer: 'respond-async' } },
    )) as unknown as JobBody;
    assert.equal(asyncJob.status, 'pending');
    assert.equal(asyncJob.queue_position, 1);
    // Waiting behind the running job longer than CESAR_OPENAI_WAIT_SECONDS: 202 with the job's Location.
    const { data, response } = await openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }).withResponse();
    assert.equal(response.status, 202);
    assert.equal(response.headers.get('location'), `/jobs/${(data as unknown as JobBody).id}`);
    assert.equal((data as unknown as JobBody).queue_position, 2);

    const interactive = [asyncJob.id, (data as unknown as JobBody).id];
    const finished = await Promise.all([...interactive, ...batch].map((id) => waitForJob(client, id, ['completed', 'failed'])));
    const completedAt = finished.map((job) => Date.parse(String(job.completed_at)));
    assert.ok(Math.max(completedAt[0] ?? 0, completedAt[1] ?? 0) <= Math.min(completedAt[2] ?? 0, completedAt[3] ?? 0), 'interactive jobs finished before the older batch jobs');
    const text = (await client.get(`/jobs/${asyncJob.id}/result`)).text;
    assert.ok(words(text).includes('country'));
    await client.post(`/jobs/${running}/cancel`);
    await openai.checked();
  });

  test('a client that goes away loses nothing: the job completes and its transcript stays fetchable', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const controller = new AbortController();
    const call = openai.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }, { signal: controller.signal });
    let jobId: string | undefined;
    while (jobId === undefined) {
      const listed = (await client.get('/jobs?limit=1')).json as { jobs: JobBody[] };
      const newest = listed.jobs[0];
      if (newest && newest.file_name === 'jfk.ogg' && newest.status !== 'completed' && newest.status !== 'canceled') {
        jobId = newest.id;
      }
    }
    controller.abort();
    await assert.rejects(call);
    assert.equal((await waitForJob(client, jobId, ['completed', 'failed'])).status, 'completed');
    assert.ok(words((await client.get(`/jobs/${jobId}/result`)).text).includes('country'));
  });

  test('a full queue is 503 with Retry-After in OpenAI error shape', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const full = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_MAX_PENDING_JOBS: '1' });
    try {
      const running = ((await full.client.post('/jobs', { body: await jobForm('long.ogg', {}, long) })).json as JobBody).id;
      await waitForJob(full.client, running, ['processing']);
      const waiting = ((await full.client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
      const fullClient = openAIClient(full.client.baseUrl);
      const refused = await expectError(fullClient.client.audio.transcriptions.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }), 503, 'queue_full', null);
      assert.ok(Number(refused.headers?.get('retry-after')) >= 1);
      await expectError(fullClient.client.audio.translations.create({ file: await audio('jfk.ogg'), model: 'whisper-1' }), 503, 'queue_full', null);
      await fullClient.checked();
      await full.client.post(`/jobs/${waiting}/cancel`);
      await full.client.post(`/jobs/${running}/cancel`);
    } finally {
      await full.close();
    }
  });
});
