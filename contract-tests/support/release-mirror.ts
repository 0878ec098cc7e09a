/**
 * @module contract-tests/support/release-mirror
 * A release server in the official sherpa-onnx layout, made at test time from the test model: the model packed
 * as sherpa-onnx packs it (one top folder per model, bzip2) under `/good/`, and variants of it under other
 * prefixes: cut off halfway (`/cut/`), damaged (`/damaged/`), one whose folder holds no usable model (`/fake/`),
 * and one that stops halfway until the test releases it (`/gated/`), so a test can look at a download in progress.
 * It counts the connections it accepts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import path from 'node:path';

import { runCommand } from './cli.ts';
import { tempDir, TEST_MODEL } from './harness.ts';

export const ARCHIVE = `sherpa-onnx-whisper-${TEST_MODEL}.tar.bz2`;

export interface ReleaseMirror {
  baseUrl: string;
  archiveSha256: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Lets the `/gated/` archive finish. */
  releaseGate(): void;
  close(): Promise<void>;
}

interface Archives {
  good: Buffer;
  fake: Buffer;
  vad: Buffer;
}

// Packing the model takes seconds: done once per test run (the files share this module), removed at exit.
let packed: Promise<Archives> | null = null;

function packArchives(sourceModels: string): Promise<Archives> {
  packed ??= (async () => {
    const workDir = await tempDir('cesar-mirror-');
    process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));
    const good = path.join(workDir, ARCHIVE);
    const packedGood = await runCommand('tar', ['-C', sourceModels, '-cjf', good, `sherpa-onnx-whisper-${TEST_MODEL}`]);
    assert.equal(packedGood.code, 0, packedGood.stderr);
    const fake = path.join(workDir, 'fake', `sherpa-onnx-whisper-${TEST_MODEL}`);
    await mkdir(fake, { recursive: true });
    await writeFile(path.join(fake, `${TEST_MODEL}-encoder.int8.onnx`), 'not an onnx model');
    await writeFile(path.join(fake, `${TEST_MODEL}-decoder.int8.onnx`), 'not an onnx model');
    await writeFile(path.join(fake, `${TEST_MODEL}-tokens.txt`), 'a 0\n');
    const fakeArchive = path.join(workDir, 'fake.tar.bz2');
    const packedFake = await runCommand('tar', ['-C', path.dirname(fake), '-cjf', fakeArchive, path.basename(fake)]);
    assert.equal(packedFake.code, 0, packedFake.stderr);
    return { good: await readFile(good), fake: await readFile(fakeArchive), vad: await readFile(path.join(sourceModels, 'silero_vad.onnx')) };
  })();
  return packed;
}

/** Serves the release files made from the test model in `sourceModels` on a free local port. */
export async function startReleaseMirror(sourceModels: string): Promise<ReleaseMirror> {
  const { good, fake, vad } = await packArchives(sourceModels);
  const damaged = Buffer.from(good);
  damaged.fill(0x55, Math.floor(damaged.length / 3), Math.floor(damaged.length / 3) + 4096);
  const files: Record<string, Buffer> = {
    [`/good/${ARCHIVE}`]: good,
    [`/damaged/${ARCHIVE}`]: damaged,
    [`/fake/${ARCHIVE}`]: fake,
    '/good/silero_vad.onnx': vad,
    '/gated/silero_vad.onnx': vad,
  };
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === `/cut/${ARCHIVE}`) {
      // Announces the whole archive, sends half of it, then drops the connection.
      res.writeHead(200, { 'content-length': good.length, 'content-type': 'application/x-bzip2' });
      res.write(good.subarray(0, Math.floor(good.length / 2)), () => res.destroy());
      return;
    }
    if (url === `/gated/${ARCHIVE}`) {
      res.writeHead(200, { 'content-length': good.length, 'content-type': 'application/x-bzip2' });
      res.write(good.subarray(0, Math.floor(good.length / 2)));
      void gate.then(() => res.end(good.subarray(Math.floor(good.length / 2))));
      return;
    }
    const body = files[url];
    if (!body) {
      res.writeHead(404).end('Not Found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    archiveSha256: createHash('sha256').update(good).digest('hex'),
    get connections() {
      return connections;
    },
    releaseGate: () => openGate(),
    close: () =>
      new Promise<void>((resolve) => {
        openGate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A server that accepts connections, counts them and answers nothing useful: proof that nobody called. */
export async function startSentinel(): Promise<{ baseUrl: string; readonly connections: number; close(): Promise<void> }> {
  let connections = 0;
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    baseUrl: `http://127.0.0.1:${port}/asr-models/`,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
