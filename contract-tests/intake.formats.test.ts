import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../src/audio/ffmpeg.ts';
import { storedUploads } from './support/backends.ts';
import { FIXTURES, jobForm, requireModel, startServer, tempDir, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

const INTAKE = path.join(FIXTURES, 'intake');
/** The first 2.4-2.6 s of the JFK clip (see fixtures/intake/make.sh). */
const SPOKEN = ['and', 'so', 'my', 'fellow', 'americans'];

interface Problem {
  status: number;
  code: string;
  detail?: string;
}

async function intakeFile(name: string): Promise<Blob> {
  return new Blob([await readFile(path.join(INTAKE, name))]);
}

async function submit(server: TestServer, name: string, contents: Blob): Promise<JobBody> {
  const response = await server.client.post('/jobs', { body: await jobForm(name, { model: TEST_MODEL }, contents) });
  assert.equal(response.status, 202, `${name}: ${response.text}`);
  return response.json as JobBody;
}

describe('audio intake: every real-world container in, hostile input refused', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_DURATION_SECONDS: '8' });
  });
  after(() => server.close());

  const formats: [file: string, what: string][] = [
    ['speech-8k.wav', 'WAV, 8 kHz PCM'],
    ['speech-16k.wav', 'WAV, 16 kHz IMA ADPCM'],
    ['speech-44k-stereo.wav', 'WAV, 44.1 kHz stereo'],
    ['speech.mp3', 'MP3'],
    ['speech.flac', 'FLAC'],
    ['speech.ogg', 'Ogg Vorbis'],
    ['speech.opus', 'Ogg Opus'],
    ['speech.m4a', 'M4A (AAC) with the moov atom at the end'],
    ['speech.aac', 'raw AAC (ADTS)'],
    ['speech.webm', 'WebM (Opus)'],
    ['speech.mkv', 'Matroska (Vorbis)'],
    ['speech-video.mp4', 'an MP4 video with speech'],
  ];

  test('each container transcribes to the spoken words', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const jobs = await Promise.all(formats.map(async ([file]) => submit(server, file, await intakeFile(file))));
    const heard: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const [index, [file, what]] of formats.entries()) {
      const job = await waitForJob(server.client, jobs[index]?.id ?? '', ['completed', 'failed']);
      assert.equal(job.status, 'completed', `${what}: ${JSON.stringify(job.error)}`);
      const duration = Number(job.duration_seconds);
      assert.ok(duration > 2.3 && duration < 2.7, `${what}: duration ${duration}`);
      heard[file] = words((await server.client.get(`/jobs/${job.id}/result`)).text).join(' ');
      // The final "s" of "Americans" lives above 4 kHz: an 8 kHz recording does not carry it.
      expected[file] = file === 'speech-8k.wav' ? 'and so my fellow america' : SPOKEN.join(' ');
    }
    assert.deepEqual(heard, expected);
  });

  test('hostile input is refused without reading anything else, and nothing leaks', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    // Both point at real speech: a job that followed them would complete with its words.
    const speech = path.join(INTAKE, 'speech.mp3');
    const cases: [name: string, contents: Blob, code: string][] = [
      ['passwd.m3u8', await intakeFile('hls-passwd.m3u8'), 'undecodable_media'],
      ['speech.m3u8', new Blob([`#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.4,\nfile:${speech}\n#EXT-X-ENDLIST\n`]), 'undecodable_media'],
      ['list.ffconcat', await intakeFile('concat.ffconcat'), 'undecodable_media'],
      ['speech.ffconcat', new Blob([`ffconcat version 1.0\nfile '${speech}'\n`]), 'undecodable_media'],
      ['not-audio.mp3', new Blob([await readFile(path.join(FIXTURES, 'not-audio.mp3'))]), 'undecodable_media'],
      ['truncated.mp3', await intakeFile('truncated.mp3'), 'undecodable_media'],
    ];
    const jobs = await Promise.all(cases.map(([name, contents]) => submit(server, name, contents)));
    for (const [index, [name, , code]] of cases.entries()) {
      const job = await waitForJob(server.client, jobs[index]?.id ?? '', ['completed', 'failed']);
      assert.equal(job.status, 'failed', name);
      assert.equal(job.error?.code, code, `${name}: ${JSON.stringify(job.error)}`);
      const exposed = JSON.stringify(job);
      for (const secret of [server.dataDir, INTAKE, 'ffmpeg', '-nostdin', 'whitelist', 'root:']) {
        assert.equal(exposed.includes(secret), false, `${name} leaks ${secret}`);
      }
    }
  });

  test('a zero-byte file and a path-traversal name are handled at the door, the file stored by id only', async () => {
    const empty = await server.client.post('/jobs', { body: await jobForm('empty.mp3', {}, new Blob([])) });
    assert.equal(empty.status, 400);
    assert.equal((empty.json as Problem).code, 'empty_file');

    const traversal = await server.client.post('/jobs', { body: await jobForm('../../../../etc/cron.d/evil.mp3', { model: TEST_MODEL }, await intakeFile('speech.mp3')) });
    if (traversal.status === 422) {
      return; // no model installed: the upload is refused before a job exists, nothing to inspect
    }
    assert.equal(traversal.status, 202);
    const job = traversal.json as JobBody;
    assert.equal(job.file_name, 'evil.mp3', 'only the base name is kept, as metadata');
    const stored = await storedUploads(server.dataDir);
    assert.ok(stored.every((name) => /^[0-9a-f-]{36}$/.test(name)), `stored names: ${stored.join(', ')}`);
    await server.client.request('DELETE', `/jobs/${job.id}`);
  });

  test('media longer than the limit fails with media_too_long before transcription', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const long = path.join(await tempDir(), 'long.ogg');
    await promisify(execFile)(bundledFfmpegPath(), [
      '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=20', '-c:a', 'libvorbis', '-y', long,
    ]);
    const job = await waitForJob(server.client, (await submit(server, 'long.ogg', new Blob([await readFile(long)]))).id, ['completed', 'failed']);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'media_too_long');
    assert.match(job.error?.message ?? '', /8 seconds/);
  });

  test('a video without sound fails with no_audio_stream, an audio stream without samples with empty_audio', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const dir = await tempDir();
    const run = promisify(execFile);
    const silentVideo = path.join(dir, 'silent.mkv');
    await run(bundledFfmpegPath(), ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=16x16:r=2:d=1', '-c:v', 'mpeg4', '-y', silentVideo]);
    const noSamples = path.join(dir, 'no-samples.wav');
    // A WAV header that declares an audio stream, and no data.
    await run(bundledFfmpegPath(), ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '0', '-y', noSamples]);
    const video = await waitForJob(server.client, (await submit(server, 'silent.mkv', new Blob([await readFile(silentVideo)]))).id, ['completed', 'failed']);
    assert.equal(video.error?.code, 'no_audio_stream');
    const empty = await waitForJob(server.client, (await submit(server, 'no-samples.wav', new Blob([await readFile(noSamples)]))).id, ['completed', 'failed']);
    assert.equal(empty.error?.code, 'empty_audio');
  });

  test('audio that starts late in a video keeps its place on the timeline', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const late = path.join(await tempDir(), 'late.mp4');
    await promisify(execFile)(bundledFfmpegPath(), [
      '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=black:s=16x16:r=5:d=5.4',
      '-itsoffset', '3', '-i', path.join(INTAKE, 'speech.m4a'), '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-c:a', 'copy', '-y', late,
    ]);
    const job = await waitForJob(server.client, (await submit(server, 'late.mp4', new Blob([await readFile(late)]))).id, ['completed', 'failed']);
    assert.equal(job.status, 'completed', JSON.stringify(job.error));
    assert.ok(Number(job.duration_seconds) > 5, `duration ${String(job.duration_seconds)} includes the lead-in`);
    const json = (await server.client.get(`/jobs/${job.id}/result?format=verbose_json`)).json as { segments: { start: number; words: { word: string; start: number }[] | null }[] };
    const first = json.segments.flatMap((segment) => segment.words ?? []).find((word) => words(word.word).includes('fellow'));
    assert.ok(first, `no "fellow" among the timed words: ${JSON.stringify(json.segments)}`);
    assert.ok(first.start > 3, `"fellow" at ${first.start} s, after the 3 s lead-in`);
  });
});
