import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { parse } from '@plussub/srt-vtt-parser';

import { wordErrorRate } from './support/audio.ts';
import { jobForm, requireModel, startServer, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

// The package's declaration file imports './types' without an extension, which NodeNext resolution cannot follow.
const parseSubtitles = parse as (raw: string) => { entries: { id: string; from: number; to: number; text: string }[] };

/** Real recordings committed as fixtures (see fixtures/README.md), with their reference transcripts. */
const REFERENCES: Record<string, string> = {
  'jfk.ogg': 'and so my fellow americans ask not what your country can do for you ask what you can do for your country',
  'ldc93s1.ogg': 'she had your dark suit in greasy wash water all year',
  'librispeech-61-70968-0000.ogg': 'he began a confused complaint against the wizard who had vanished behind the curtain on the left',
  'librispeech-1272-128104-0000.ogg': 'mister quilter is the apostle of the middle classes and we are glad to welcome his gospel',
  'ljspeech-001-0005.ogg': 'the invention of movable metal letters in the middle of the fifteenth century may justly be considered as the invention of the art of printing',
};
/** tiny.en scores about 1 % here (one word in 92); the engine notes measured 8 % over 281 s of speech. */
const MAX_WORD_ERROR_RATE = 0.08;

/** Whisper writes some words the way a reader would; compare them spoken. */
function spoken(text: string): string[] {
  return words(text.replace(/\bMr\./g, 'mister').replace(/\b15th\b/g, 'fifteenth'));
}

interface TranscriptJson {
  text: string;
  language: string;
  language_confidence: number | null;
  duration_seconds: number;
  segments: { start: number; end: number; text: string; words?: { word: string; start: number; end: number }[] }[];
}

function subtitleWords(text: string): string[] {
  return words(parseSubtitles(text).entries.map((entry) => entry.text).join(' '));
}

function assertCuesOrdered(text: string, durationSeconds: number): { from: number; to: number; text: string }[] {
  const { entries } = parseSubtitles(text);
  assert.ok(entries.length > 0, 'the subtitles have cues');
  let previousEnd = 0;
  for (const entry of entries) {
    assert.ok(entry.from >= previousEnd, `cue at ${entry.from} ms starts before the previous one ends (${previousEnd} ms)`);
    assert.ok(entry.to >= entry.from, 'a cue ends after it starts');
    assert.ok(entry.to <= Math.ceil(durationSeconds * 1000), `cue end ${entry.to} ms is within the audio (${durationSeconds} s)`);
    previousEnd = entry.to;
  }
  return entries;
}

describe('transcripts in every format', () => {
  let server: TestServer;
  const jobs = new Map<string, string>();
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '2' });
  });
  after(() => server.close());

  test('the word error rate on the committed real-speech fixtures stays under the threshold', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    for (const name of Object.keys(REFERENCES)) {
      const submitted = await client.post('/jobs', { body: await jobForm(name, { model: TEST_MODEL }) });
      jobs.set(name, (submitted.json as JobBody).id);
    }
    let errors = 0;
    let total = 0;
    const report: string[] = [];
    for (const [name, reference] of Object.entries(REFERENCES)) {
      const id = jobs.get(name) ?? '';
      const done = await waitForJob(client, id, ['completed', 'failed']);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      const hypothesis = spoken((await client.get(`/jobs/${id}/result?format=txt`)).text);
      const wer = wordErrorRate(reference.split(' '), hypothesis);
      errors += wer.errors;
      total += wer.words;
      report.push(`${name}: ${wer.errors}/${wer.words} "${hypothesis.join(' ')}"`);
    }
    t.diagnostic(`WER ${(errors / total).toFixed(3)} over ${total} words\n${report.join('\n')}`);
    assert.ok(errors / total <= MAX_WORD_ERROR_RATE, `WER ${(errors / total).toFixed(3)} > ${MAX_WORD_ERROR_RATE}\n${report.join('\n')}`);
  });

  test('the same audio gives the same words through txt, json, verbose_json, srt and vtt', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    for (const name of Object.keys(REFERENCES)) {
      const id = jobs.get(name) ?? ((await client.post('/jobs', { body: await jobForm(name) })).json as JobBody).id;
      await waitForJob(client, id, ['completed', 'failed']);
      const plain = words((await client.get(`/jobs/${id}/result?format=txt`)).text);
      const json = (await client.get(`/jobs/${id}/result?format=json`)).json as TranscriptJson;
      const verbose = (await client.get(`/jobs/${id}/result?format=verbose_json`)).json as TranscriptJson;
      assert.deepEqual(words(json.text), plain, `${name}: json text`);
      assert.deepEqual(words(json.segments.map((segment) => segment.text).join(' ')), plain, `${name}: json segments`);
      assert.deepEqual(words(verbose.segments.flatMap((segment) => segment.words ?? []).map((word) => word.word).join(' ')), plain, `${name}: words`);
      assert.deepEqual(subtitleWords((await client.get(`/jobs/${id}/result?format=srt`)).text), plain, `${name}: srt`);
      assert.deepEqual(subtitleWords((await client.get(`/jobs/${id}/result?format=vtt`)).text), plain, `${name}: vtt`);
      assert.equal(json.language, 'en');
      assert.equal(json.language_confidence, null, 'an English-only model detects nothing');
    }
  });

  test('srt and vtt parse with a subtitle parser, with ordered cues inside the audio shaped by line width and lines per cue', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = jobs.get('ljspeech-001-0005.ogg') ?? ((await client.post('/jobs', { body: await jobForm('ljspeech-001-0005.ogg') })).json as JobBody).id;
    await waitForJob(client, id, ['completed', 'failed']);
    const json = (await client.get(`/jobs/${id}/result?format=json`)).json as TranscriptJson;
    const plain = words(json.text);
    for (const format of ['srt', 'vtt'] as const) {
      const shaped = await client.get(`/jobs/${id}/result?format=${format}&max_line_width=20&max_lines_per_cue=1`);
      const entries = assertCuesOrdered(shaped.text, json.duration_seconds);
      assert.ok(entries.length >= 5, `${format}: a 140-character sentence needs several 20-character cues, got ${entries.length}`);
      for (const entry of entries) {
        const lines = entry.text.split('\n');
        assert.equal(lines.length, 1, `${format}: one line per cue: ${JSON.stringify(entry.text)}`);
        assert.ok(lines.every((line) => line.length <= 20 || !line.includes(' ')), `${format}: line too wide: ${JSON.stringify(entry.text)}`);
      }
      assert.deepEqual(subtitleWords(shaped.text), plain, `${format}: shaping keeps every word`);

      const twoLines = parseSubtitles((await client.get(`/jobs/${id}/result?format=${format}&max_line_width=30&max_lines_per_cue=2`)).text).entries;
      assert.ok(twoLines.some((entry) => entry.text.split('\n').length === 2), `${format}: cues of two lines`);
      assert.ok(twoLines.every((entry) => entry.text.split('\n').length <= 2 && entry.text.split('\n').every((line) => line.length <= 30)));
      assertCuesOrdered((await client.get(`/jobs/${id}/result?format=${format}`)).text, json.duration_seconds);
    }
  });

  test('the format is negotiated by Accept, with content types and download names to match, and 406 when nothing fits', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = jobs.get('ldc93s1.ogg') ?? ((await client.post('/jobs', { body: await jobForm('ldc93s1.ogg') })).json as JobBody).id;
    await waitForJob(client, id, ['completed', 'failed']);
    const cases = [
      { accept: 'text/vtt', type: 'text/vtt', extension: 'vtt' },
      { accept: 'application/x-subrip', type: 'application/x-subrip', extension: 'srt' },
      { accept: 'application/json', type: 'application/json', extension: 'json' },
      { accept: 'text/plain', type: 'text/plain', extension: 'txt' },
      { accept: 'text/html;q=0.9, text/vtt;q=0.5, application/json;q=0.8', type: 'application/json', extension: 'json' },
      { accept: '*/*', type: 'text/plain', extension: 'txt' },
    ];
    for (const { accept, type, extension } of cases) {
      const response = await client.get(`/jobs/${id}/result`, { headers: { accept } });
      assert.equal(response.status, 200);
      assert.equal(response.contentType, type, `Accept: ${accept}`);
      assert.match(response.headers.get('content-disposition') ?? '', new RegExp(`^attachment; filename="${id}\\.${extension}"$`));
    }
    const byParameter = await client.get(`/jobs/${id}/result?format=srt`, { headers: { accept: 'application/json' } });
    assert.equal(byParameter.contentType, 'application/x-subrip', 'format= wins over Accept');

    const refused = await client.get(`/jobs/${id}/result`, { headers: { accept: 'image/png' } });
    assert.equal(refused.status, 406);
    assert.equal((refused.json as { code: string }).code, 'not_acceptable');
  });

  test('each format has an operation of its own, with one content type, that answers as the negotiated download does', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = jobs.get('jfk.ogg') ?? ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    await waitForJob(client, id, ['completed', 'failed']);
    const cases = [
      { path: 'transcript', format: 'json', type: 'application/json' },
      { path: 'transcript/verbose', format: 'verbose_json', type: 'application/json' },
      { path: 'transcript/text', format: 'txt', type: 'text/plain' },
      { path: 'transcript/srt?max_line_width=20', format: 'srt&max_line_width=20', type: 'application/x-subrip' },
      { path: 'transcript/vtt?max_lines_per_cue=1', format: 'vtt&max_lines_per_cue=1', type: 'text/vtt' },
    ];
    for (const { path, format, type } of cases) {
      // Whatever the client says it accepts: the operation names the format.
      const own = await client.get(`/jobs/${id}/${path}`, { headers: { accept: 'application/json' } });
      assert.equal(own.status, 200, `${path}: ${own.text}`);
      assert.equal(own.contentType, type, path);
      assert.equal(own.text, (await client.get(`/jobs/${id}/result?format=${format}`)).text, path);
      assert.match(own.headers.get('content-disposition') ?? '', new RegExp(`^attachment; filename="${id}\\.`), path);

      const missing = await client.get(`/jobs/00000000-0000-4000-8000-000000000000/${path}`);
      assert.equal(missing.status, 404, path);
      assert.equal((missing.json as { code: string }).code, 'job_not_found', path);
      const malformed = await client.get(`/jobs/not-a-uuid/${path}`);
      assert.equal(malformed.status, 400, path);
    }
    assert.deepEqual(words(((await client.get(`/jobs/${id}/transcript`)).json as TranscriptJson).text), REFERENCES['jfk.ogg']?.split(' '));
  });
});
