import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { generated, stitched } from './support/audio.ts';
import type { Placement } from './support/audio.ts';
import { jobForm, requireModel, startServer, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

const SENTENCES: Record<string, string> = {
  'librispeech-61-70968-0000.ogg': 'he began a confused complaint against the wizard who had vanished behind the curtain on the left',
  'librispeech-1272-128104-0000.ogg': 'mister quilter is the apostle of the middle classes and we are glad to welcome his gospel',
  'ljspeech-001-0005.ogg': 'the invention of movable metal letters in the middle of the fifteenth century may justly be considered as the invention of the art of printing',
};
const LONG_SECONDS = 20 * 60;
/** tiny.en's recognizer plateaus near 400 MB (engine notes); holding 20 minutes of samples would add 77 MB more. */
const MAX_WORKER_PEAK_RSS_BYTES = 600 * 1024 * 1024;
const START_TOLERANCE_SECONDS = 0.5;

interface TranscriptJson {
  text: string;
  duration_seconds: number;
  segments: { start: number; end: number; text: string }[];
}

describe('long and empty audio', () => {
  let server: TestServer;
  before(async () => {
    // One worker, so that jobs queue behind the long one and its RSS is that of one process.
    server = await startServer({ CESAR_MAX_WORKERS: '1' });
  });
  after(() => server.close());

  test('a 20-minute recording completes with each sentence placed where it was put, in flat worker memory, with progress, speed, time left and queue positions on the way', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const names = Object.keys(SENTENCES);
    // Twenty sentences about a minute apart; every fourth follows the one before after a 2.5 s pause, so that
    // the two share a decoding window and must be told apart by their word times.
    const placements: Placement[] = [];
    for (let i = 0; i < 20; i++) {
      const previous = placements.at(-1);
      const atSeconds = i % 4 === 3 && previous ? previous.atSeconds + 11 : 7.3 + i * 58 + (i % 3) * 2.9;
      placements.push({ fixture: names[i % names.length] ?? '', atSeconds: Math.round(atSeconds * 100) / 100 });
    }
    const audio = await stitched(placements, LONG_SECONDS);
    const long = ((await client.post('/jobs', { body: await jobForm('long.flac', { model: TEST_MODEL }, audio) })).json as JobBody).id;
    await waitForJob(client, long, ['processing', 'completed', 'failed']);
    const queued: JobBody[] = [];
    for (const name of ['ldc93s1.ogg', 'ldc93s1.ogg']) {
      queued.push((await client.post('/jobs', { body: await jobForm(name) })).json as JobBody);
    }
    assert.deepEqual(queued.map((job) => [job.status, job.queue_position]), [['pending', 1], ['pending', 2]]);
    const listed = (await client.get('/jobs?status=pending')).json as { jobs: JobBody[] };
    assert.deepEqual(
      listed.jobs.map((job) => [job.id, job.queue_position]),
      [[queued[1]?.id, 2], [queued[0]?.id, 1]],
      'a listing shows the same positions, newest first',
    );

    const seen: JobBody[] = [];
    for (;;) {
      const job = (await client.get(`/jobs/${long}`)).json as JobBody;
      if (job.status !== 'processing') {
        break;
      }
      seen.push(job);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const progress = [...new Set(seen.map((job) => job.progress).filter((value) => value > 0 && value < 100))];
    assert.ok(progress.length >= 3, `progress advanced window by window: ${progress.join(', ')}`);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
    const measured = seen.filter((job) => typeof job.speed === 'number');
    assert.ok(measured.length > 0, 'the speed is shown while processing');
    assert.ok(measured.every((job) => Number(job.speed) > 0 && typeof job.eta_seconds === 'number' && Number(job.processed_seconds) > 0));
    assert.equal(((await client.get(`/jobs/${queued[0]?.id ?? ''}`)).json as JobBody).queue_position ?? 1, 1);

    const done = await waitForJob(client, long, ['completed', 'failed'], 300_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.processed_seconds, done.duration_seconds);
    assert.equal(done.eta_seconds, null);
    const transcript = (await client.get(`/jobs/${long}/result?format=json`)).json as TranscriptJson;
    assert.ok(Math.abs(transcript.duration_seconds - LONG_SECONDS) < 0.1);

    let worstStartError = 0;
    const report = transcript.segments.map((segment) => `${segment.start.toFixed(2)}-${segment.end.toFixed(2)} ${segment.text}`).join('\n');
    for (const placement of placements) {
      const expected = SENTENCES[placement.fixture]?.split(' ') ?? [];
      const segment = transcript.segments.find((candidate) => Math.abs(candidate.start - placement.atSeconds) <= START_TOLERANCE_SECONDS);
      assert.ok(segment, `a segment starts within ${START_TOLERANCE_SECONDS} s of ${placement.atSeconds} s (${placement.fixture})\n${report}`);
      worstStartError = Math.max(worstStartError, Math.abs(segment.start - placement.atSeconds));
      const heard = new Set(words(segment.text));
      assert.ok(expected.filter((word) => heard.has(word)).length >= expected.length / 2, `the sentence at ${placement.atSeconds} s: ${segment.text}`);
    }
    t.diagnostic(`largest distance between a sentence's placement and its segment's start: ${worstStartError.toFixed(2)} s`);
    for (const segment of transcript.segments) {
      assert.ok(
        placements.some((placement) => segment.start >= placement.atSeconds - START_TOLERANCE_SECONDS && segment.start < placement.atSeconds + 10),
        `no text where nothing was said: ${segment.start} ${segment.text}`,
      );
    }

    const health = (await client.get('/health')).json as { workers: { model: string | null; peak_rss_bytes: number }[] };
    const worker = health.workers.find((candidate) => candidate.model === TEST_MODEL);
    assert.ok(worker, 'the worker reports itself');
    t.diagnostic(`worker peak RSS ${(worker.peak_rss_bytes / 2 ** 20).toFixed(0)} MB`);
    assert.ok(worker.peak_rss_bytes < MAX_WORKER_PEAK_RSS_BYTES, `peak RSS ${worker.peak_rss_bytes} bytes`);
    for (const job of queued) {
      assert.equal((await waitForJob(client, job.id, ['completed', 'failed'])).status, 'completed');
    }
  });

  for (const [kind, source] of [
    ['silence', 'anullsrc=r=16000:cl=mono'],
    ['a steady tone', 'sine=frequency=440:sample_rate=16000'],
    ['pink noise', 'anoisesrc=color=pink:amplitude=0.3:sample_rate=16000'],
    ['a synthetic melody with a beat', "aevalsrc=0.2*sin(2*PI*(220+110*floor(mod(t*2\\,4)))*t)+0.1*sin(4*PI*(220+110*floor(mod(t*2\\,4)))*t)+0.15*sin(2*PI*330*t)*lt(mod(t\\,0.5)\\,0.25)+0.05*random(0)*lt(mod(t\\,0.25)\\,0.03):s=16000"],
  ] as const) {
    test(`${kind} gives an empty transcript, not invented text`, async (t) => {
      if (!requireModel(t)) {
        return;
      }
      const { client } = server;
      const id = ((await client.post('/jobs', { body: await jobForm('sound.flac', {}, await generated(source, 30)) })).json as JobBody).id;
      const done = await waitForJob(client, id, ['completed', 'failed']);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      const json = (await client.get(`/jobs/${id}/result?format=json`)).json as TranscriptJson;
      assert.equal(json.text, '', `${kind} gave: ${json.text}`);
      assert.deepEqual(json.segments, []);
      assert.equal((await client.get(`/jobs/${id}/result?format=srt`)).text, '');
    });
  }

  test('a clip shorter than the engine can take (under 80 samples) completes empty instead of crashing the worker', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await jobForm('blip.flac', {}, await generated('sine=frequency=440:sample_rate=16000', 0.0025)) })).json as JobBody).id;
    const done = await waitForJob(client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempts, 1, 'the first attempt finished: no worker died');
    assert.ok(Number(done.duration_seconds) < 0.01);
    assert.equal((await client.get(`/jobs/${id}/result?format=txt`)).text, '\n');
  });
});
