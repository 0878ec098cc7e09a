/**
 * Stalled uploads (issue 13): clients that send the headers and part of a file, then nothing, against a server
 * with a low open-file limit. Each must be cut within seconds of going quiet and its partial file deleted; past the
 * cap on concurrent uploads the server answers 503 before reading a body; /health keeps answering throughout, and
 * a normal job still completes and cleans up after itself.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { storedUploads } from '../support/backends.ts';
import { checkAgainstSpec } from '../support/contract.ts';
import { jobForm, requireModel, tempDir, waitForJob } from '../support/harness.ts';
import type { JobBody } from '../support/harness.ts';
import { startServerProcess } from '../support/server-process.ts';
import type { ServerProcess } from '../support/server-process.ts';

const OPEN_FILES_LIMIT = 256;
/** More stalled clients than the server may hold open files. */
const STALLED = 300;
const IDLE_TIMEOUT_MS = 2000;
const MAX_UPLOADS = 16;

interface Stalled {
  socket: net.Socket;
  openedMs: number;
  /** The answer's raw bytes, if one came. */
  answer: string;
  closedMs: number | null;
}

/** Sends the headers of a 10 MB multipart upload and its first 64 KiB, then nothing more. */
function stallUpload(port: number): Promise<Stalled> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const stalled: Stalled = { socket, openedMs: Date.now(), answer: '', closedMs: null };
    socket.on('data', (chunk: Buffer) => {
      stalled.answer += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      stalled.closedMs = Date.now();
    });
    socket.on('connect', () => {
      const part = '--stall\r\nContent-Disposition: form-data; name="file"; filename="stalled.ogg"\r\nContent-Type: audio/ogg\r\n\r\n';
      socket.write(
        `POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=stall\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n${part}`,
      );
      socket.write(Buffer.alloc(64 * 1024, 9), () => resolve(stalled));
    });
  });
}

function statusOf(answer: string): number | null {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(answer);
  return match?.[1] ? Number(match[1]) : null;
}

/** Checks a raw HTTP/1.1 answer (sent with a Content-Length) against the spec, as the contract client does; returns its body. */
function checkRaw(answer: string, path = '/jobs'): { code?: string } {
  const [head = '', text = ''] = answer.split('\r\n\r\n');
  const headers = new Headers();
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return checkAgainstSpec('POST', new URL(path, 'http://127.0.0.1'), { status: statusOf(answer) ?? 0, headers, text }).json as { code?: string };
}

async function openFiles(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

describe('stalled uploads against a server with a low open-file limit', () => {
  let dataDir: string;
  let server: ServerProcess;
  before(async () => {
    dataDir = await tempDir('cesar-stalled-');
    server = await startServerProcess(
      dataDir,
      { CESAR_UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS), CESAR_MAX_CONCURRENT_UPLOADS: String(MAX_UPLOADS), CESAR_MAX_WORKERS: '1' },
      { openFilesLimit: OPEN_FILES_LIMIT },
    );
  });
  after(async () => {
    server.signal('SIGKILL');
    await server.exited;
  });

  test(`${STALLED} stalled uploads are cut or refused, their files deleted; /health answers and a job completes`, async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const pid = server.child.pid ?? 0;
    const port = Number(new URL(server.client.baseUrl).port);
    const idleFiles = await openFiles(pid);
    const stalled: Stalled[] = [];
    // Ten at a time, as a crowd of clients would arrive rather than in one burst of SYNs.
    for (let i = 0; i < STALLED; i += 10) {
      stalled.push(...(await Promise.all(Array.from({ length: Math.min(10, STALLED - i) }, () => stallUpload(port)))));
    }
    const peakFiles = await openFiles(pid);
    const healthStart = performance.now();
    const health = await server.client.get('/health');
    const healthMs = performance.now() - healthStart;
    assert.equal(health.status, 200);

    // Every stalled client is answered and disconnected within seconds of going quiet.
    const deadline = Date.now() + IDLE_TIMEOUT_MS + 20_000;
    while (stalled.some((client) => client.closedMs === null) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const open = stalled.filter((client) => client.closedMs === null);
    for (const client of open) {
      client.socket.destroy();
    }
    const statuses = new Map<string, number>();
    for (const client of stalled) {
      const key = String(statusOf(client.answer) ?? 'none');
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    const cutMs = stalled
      .filter((client) => statusOf(client.answer) === 408)
      .map((client) => (client.closedMs ?? Date.now()) - client.openedMs)
      .sort((a, b) => a - b);
    // A cut upload's file is deleted as its connection closes, moments after the client sees the close.
    const filesDeadline = Date.now() + 5000;
    while ((await storedUploads(dataDir)).length > 0 && Date.now() < filesDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const uploadsLeft = await storedUploads(dataDir);
    t.diagnostic(
      `stalled=${STALLED} limit=${OPEN_FILES_LIMIT} open files idle=${idleFiles} with stalled clients=${peakFiles}; /health ${healthMs.toFixed(0)} ms; ` +
        `answers ${JSON.stringify(Object.fromEntries(statuses))}; 408 cut after ${cutMs[0]}..${cutMs.at(-1)} ms (idle timeout ${IDLE_TIMEOUT_MS} ms); ` +
        `still open ${open.length}; partial files left ${uploadsLeft.length}`,
    );
    assert.equal(open.length, 0, 'every stalled client was disconnected');
    assert.deepEqual(uploadsLeft, [], 'every partial file was deleted');
    // Every client was answered: cut for going quiet within the cap, refused past it. (On a slow machine the first
    // ones are cut while the last still arrive, so a few more than the cap may get in.)
    assert.equal((statuses.get('408') ?? 0) + (statuses.get('503') ?? 0), STALLED, 'every client got 408 or 503');
    assert.ok((statuses.get('408') ?? 0) >= MAX_UPLOADS, 'the uploads within the cap were cut for going quiet');
    assert.ok((statuses.get('503') ?? 0) > 0, 'the rest were refused before their body was read');
    assert.ok(peakFiles < OPEN_FILES_LIMIT - 20, `the server kept open files well under its limit (${peakFiles})`);
    const refused = stalled.find((client) => statusOf(client.answer) === 503);
    assert.match(refused?.answer ?? '', /\r\nRetry-After: \d+\r\n/i);
    assert.equal(checkRaw(refused?.answer ?? '').code, 'too_many_uploads');
    const cut = stalled.find((client) => statusOf(client.answer) === 408);
    assert.equal(checkRaw(cut?.answer ?? '').code, 'request_timeout');

    // The server is whole: a normal job goes through and leaves no files behind.
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg') });
    assert.equal(created.status, 202, created.text);
    const job = await waitForJob(server.client, (created.json as JobBody).id, ['completed', 'failed']);
    assert.equal(job.status, 'completed', JSON.stringify(job.error));
    assert.deepEqual(await storedUploads(dataDir), []);
    // The work folder goes once the job's end has been settled.
    const workDeadline = Date.now() + 5000;
    while ((await readdir(path.join(dataDir, 'work'))).length > 0 && Date.now() < workDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(await readdir(path.join(dataDir, 'work')), []);
  });

  test('a JSON body that stalls is cut the same way', async () => {
    const port = Number(new URL(server.client.baseUrl).port);
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
    await new Promise((resolve) => socket.on('connect', resolve));
    const openedMs = Date.now();
    socket.write('POST /jobs/from-url HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"url": "https://exa');
    const closedMs = await closed;
    assert.equal(statusOf(answer), 408);
    assert.equal(checkRaw(answer, '/jobs/from-url').code, 'request_timeout');
    assert.ok(closedMs - openedMs >= IDLE_TIMEOUT_MS - 100 && closedMs - openedMs < IDLE_TIMEOUT_MS + 5000, `cut after ${closedMs - openedMs} ms`);
  });
});
