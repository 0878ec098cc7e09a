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

  test('a URL is fetched by the command and submitted as a file', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer();
    const cwd = await tempDir();
    const audio = await readFile(path.join(FIXTURES, 'jfk.ogg'));
    const host = createServer((req, res) => {
      if (req.url === '/talks/jfk.ogg') {
        res.writeHead(200, { 'content-type': 'audio/ogg' }).end(audio);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      host.closeAllConnections();
      await new Promise((resolve) => host.close(resolve));
      await server.close();
      await rm(cwd, { recursive: true, force: true });
    });
    const address = host.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const result = await runCesar(['submit', `${base}/talks/jfk.ogg`, '--server', server.client.baseUrl, '--wait'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(words(result.stdout), JFK.split(' '));
    assert.match(result.stderr, /submitted jfk\.ogg as job/);

    const missing = await runCesar(['submit', `${base}/talks/none.ogg`, '--server', server.client.baseUrl], { cwd });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /talks\/none\.ogg answered 404/);
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
