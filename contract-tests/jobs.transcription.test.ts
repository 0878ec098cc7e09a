import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { jobForm, requireModel, startServer, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';

describe('a real transcription through the API', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('an uploaded recording is accepted at once, then transcribed by the real model', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const submitted = await client.post('/jobs', { body: await jobForm('jfk.ogg', { model: TEST_MODEL }) });
    assert.equal(submitted.status, 202);
    const job = submitted.json as JobBody;
    assert.equal(submitted.headers.get('location'), `/jobs/${job.id}`);
    assert.equal(job.model, TEST_MODEL);
    assert.equal(job.file_name, 'jfk.ogg');

    const done = await waitForJob(client, job.id, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.progress, 100);
    assert.ok(Math.abs(Number(done.duration_seconds) - 11) < 0.05, `duration ${String(done.duration_seconds)}`);

    const text = await client.get(`/jobs/${job.id}/result`);
    assert.equal(text.contentType, 'text/plain');
    assert.match(text.headers.get('content-disposition') ?? '', new RegExp(`filename="${job.id}\\.txt"`));
    assert.deepEqual(words(text.text), JFK.split(' '));
  });

  test('the same transcript comes back in every format, with timed segments and words', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const submitted = await client.post('/jobs', { body: await jobForm('espeak-en.ogg') });
    const id = (submitted.json as JobBody).id;
    assert.equal((await waitForJob(client, id, ['completed', 'failed'])).status, 'completed');

    const plain = words((await client.get(`/jobs/${id}/result?format=txt`)).text);
    for (const expected of ['test', 'transcription', 'service', 'weather', 'today', 'sunny', 'warm']) {
      assert.ok(plain.includes(expected), `"${expected}" missing from ${plain.join(' ')}`);
    }

    const json = (await client.get(`/jobs/${id}/result?format=json`)).json as {
      text: string;
      language: string;
      model: string;
      duration_seconds: number;
      segments: { start: number; end: number; text: string }[];
    };
    assert.deepEqual(words(json.text), plain);
    assert.equal(json.language, 'en');
    assert.equal(json.model, TEST_MODEL);
    assert.ok(json.segments.length > 0);
    let previousEnd = 0;
    for (const segment of json.segments) {
      assert.ok(segment.start >= previousEnd && segment.end > segment.start && segment.end <= json.duration_seconds);
      previousEnd = segment.end;
    }

    const verbose = (await client.get(`/jobs/${id}/result?format=verbose_json`)).json as {
      segments: { words: { word: string; start: number; end: number }[] }[];
    };
    const timedWords = verbose.segments.flatMap((segment) => segment.words);
    assert.deepEqual(words(timedWords.map((word) => word.word).join(' ')), plain);
    for (let i = 1; i < timedWords.length; i++) {
      assert.ok((timedWords[i]?.start ?? 0) >= (timedWords[i - 1]?.start ?? 0), 'word start times are monotonic');
    }

    const srt = await client.get(`/jobs/${id}/result?format=srt`);
    assert.equal(srt.contentType, 'application/x-subrip');
    assert.match(srt.text, /^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n/);
    assert.deepEqual(words(srt.text.split('\n').filter((line) => !/^\d+$|-->/.test(line)).join(' ')), plain);

    const vtt = await client.get(`/jobs/${id}/result?format=vtt`);
    assert.equal(vtt.contentType, 'text/vtt');
    assert.match(vtt.text, /^WEBVTT\n\n00:00:\d\d\.\d{3} --> /);
  });

  test('a job can be listed, then deleted with its transcript', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    await waitForJob(client, id, ['completed', 'failed']);
    const listed = (await client.get('/jobs?status=completed')).json as { jobs: JobBody[] };
    assert.ok(listed.jobs.some((job) => job.id === id));

    assert.equal((await client.delete(`/jobs/${id}`)).status, 204);
    assert.equal((await client.get(`/jobs/${id}`)).status, 404);
    assert.equal((await client.get(`/jobs/${id}/result`)).status, 404);
    assert.equal((await client.delete(`/jobs/${id}`)).status, 404);
  });
});
