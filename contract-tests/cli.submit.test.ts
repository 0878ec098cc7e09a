import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';

import { runCesar } from './support/cli.ts';
import { FIXTURES, requireModel, startServer, tempDir, TEST_MODEL, words } from './support/harness.ts';

const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';

/** The messages of the server's log lines about one job; every line about a job must carry its id. */
function jobLogMessages(logs: readonly string[], jobId: string): string[] {
  const lines = logs.map((line) => JSON.parse(line) as { msg: string; job_id?: string });
  for (const line of lines.filter((entry) => entry.msg.startsWith('job '))) {
    assert.ok(line.job_id, `a job's log line without job_id: ${JSON.stringify(line)}`);
  }
  return lines.filter((line) => line.job_id === jobId).map((line) => line.msg);
}

describe('cesar submit', () => {
  test('--wait follows the job to its end and prints the same words as a local transcription', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer();
    const cwd = await tempDir();
    t.after(async () => {
      await server.close();
      await rm(cwd, { recursive: true, force: true });
    });
    const result = await runCesar(['submit', path.join(FIXTURES, 'jfk.ogg'), '--server', server.client.baseUrl, '--wait', '--model', TEST_MODEL], { cwd });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(words(result.stdout), JFK.split(' '));
    const jobId = /job ([0-9a-f-]{36}) completed/.exec(result.stderr)?.[1] ?? '';
    assert.deepEqual(jobLogMessages(server.logs, jobId), ['job accepted', 'job started', 'audio normalized; transcribing', 'job completed']);

    const toFiles = await runCesar(
      ['submit', path.join(FIXTURES, 'jfk.ogg'), '--server', server.client.baseUrl, '--wait', '--format', 'srt,json', '--output', 'out'],
      { cwd },
    );
    assert.equal(toFiles.code, 0, toFiles.stderr);
    const srt = await readFile(path.join(cwd, 'out', 'jfk.srt'), 'utf8');
    assert.deepEqual(words(srt.split('\n').filter((line) => !/^\d+$|-->/.test(line)).join(' ')), JFK.split(' '));
    const json = JSON.parse(await readFile(path.join(cwd, 'out', 'jfk.json'), 'utf8')) as { text: string; model: string };
    assert.deepEqual(words(json.text), JFK.split(' '));
  });

  test('without --wait it prints the accepted job and exits 0', async (t) => {
    const server = await startServer();
    const cwd = await tempDir();
    t.after(async () => {
      await server.close();
      await rm(cwd, { recursive: true, force: true });
    });
    if (!requireModel(t)) {
      return;
    }
    const result = await runCesar(['submit', path.join(FIXTURES, 'jfk.ogg'), '--server', server.client.baseUrl], { cwd });
    assert.equal(result.code, 0, result.stderr);
    const job = JSON.parse(result.stdout) as { id: string; status: string; file_name: string };
    assert.equal(job.file_name, 'jfk.ogg');
    const fetched = await server.client.get(`/jobs/${job.id}`);
    assert.equal(fetched.status, 200);
  });

  test('a URL is submitted as a URL: the server downloads it, and a missing one fails the job', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const audio = await readFile(path.join(FIXTURES, 'jfk.ogg'));
    const requests: string[] = [];
    const host = createServer((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/talks/jfk.ogg') {
        res.writeHead(200, { 'content-type': 'audio/ogg' }).end(audio);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    const address = host.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    // A LAN deployment: the operator lets the server fetch from this machine's port.
    const server = await startServer({ CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true', CESAR_URL_ALLOWED_PORTS: String(port) });
    const cwd = await tempDir();
    t.after(async () => {
      host.closeAllConnections();
      await new Promise((resolve) => host.close(resolve));
      await server.close();
      await rm(cwd, { recursive: true, force: true });
    });
    const base = `http://127.0.0.1:${port}`;
    const result = await runCesar(['submit', `${base}/talks/jfk.ogg`, '--server', server.client.baseUrl, '--wait'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(words(result.stdout), JFK.split(' '));
    assert.match(result.stderr, /submitted jfk\.ogg as job/);
    assert.deepEqual(requests, ['/talks/jfk.ogg'], 'the server fetched the audio once; the command did not');

    const missing = await runCesar(['submit', `${base}/talks/none.ogg`, '--server', server.client.baseUrl, '--wait'], { cwd });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /failed: download_failed/);
  });

  test('a refused submission prints the problem code and exits 1', async (t) => {
    const server = await startServer();
    const cwd = await tempDir();
    t.after(async () => {
      await server.close();
      await rm(cwd, { recursive: true, force: true });
    });
    const result = await runCesar(['submit', path.join(FIXTURES, 'jfk.ogg'), '--server', server.client.baseUrl, '--model', 'no-such-model', '--wait'], { cwd });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the server answered 422 model_not_installed: The model no-such-model is not installed/);
  });

  test('a job that fails exits 1 with its error code', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer();
    const cwd = await tempDir();
    t.after(async () => {
      await server.close();
      await rm(cwd, { recursive: true, force: true });
    });
    const result = await runCesar(['submit', path.join(FIXTURES, 'not-audio.mp3'), '--server', server.client.baseUrl, '--wait'], { cwd });
    assert.equal(result.code, 1);
    const jobId = /job ([0-9a-f-]{36}) failed: undecodable_media/.exec(result.stderr)?.[1] ?? '';
    assert.deepEqual(jobLogMessages(server.logs, jobId), ['job accepted', 'job started', 'job failed']);
    assert.equal(result.stdout, '');
  });

  test('a server that cannot be reached exits 3 and says so', async (t) => {
    const server = await startServer();
    const url = server.client.baseUrl;
    await server.close();
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(['submit', path.join(FIXTURES, 'jfk.ogg'), '--server', url], { cwd });
    assert.equal(result.code, 3);
    assert.match(result.stderr, new RegExp(`cannot reach the server at ${url}: ECONNREFUSED`));
  });

  test('a file that does not exist exits 1 and names it', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(['submit', 'nowhere.wav', '--server', 'http://127.0.0.1:9'], { cwd });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot read nowhere\.wav: ENOENT/);
  });
});
