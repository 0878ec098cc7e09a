/**
 * @module contract-tests/support/s3-server
 * An S3-compatible test server: moto (`pip install "moto[server]"`; `CESAR_TEST_MOTO` names its `moto_server`,
 * as `.ci/run` sets it) on 127.0.0.1 and a free port, with a fresh bucket per test. Clients reach it through a
 * TCP relay that a test can shut and reopen on the same port: a restarted moto would come back empty, so the relay
 * is how "the bucket is unreachable, then back with its objects" is shown.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { requireTool } from './cli.ts';

export const MOTO = process.env.CESAR_TEST_MOTO ?? path.join(os.tmpdir(), 'cesar-ci-venv', 'bin', 'moto_server');

export interface S3Server {
  /** The relay's URL, which clients use. */
  endpoint: string;
  /** A new empty bucket; resolves with `s3://<bucket>/<prefix>`. */
  createBucket(prefix?: string): Promise<string>;
  /** The `AWS_*` variables that point a Cesar process at this server. */
  env: Record<string, string>;
  /** Every key in a bucket (prefix included), straight from moto. */
  keys(bucket: string): Promise<string[]>;
  /** Shuts the relay: connections are refused, as from a store that is down, until `resume()`. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** False, with the test skipped (or failed in CI), when moto is not installed. */
export function requireMoto(t: TestContext): boolean {
  return requireTool(t, `moto_server (${MOTO})`, existsSync(MOTO), 'pip install "moto[server]" into /tmp/cesar-ci-venv, or set CESAR_TEST_MOTO');
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Forwards connections on `port` to `target` while open; closing it also cuts the connections it relays. */
function relay(port: number, target: number): { open(): Promise<void>; shut(): Promise<void> } {
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  return {
    async open() {
      const listening = net.createServer((client) => {
        const upstream = net.connect(target, '127.0.0.1');
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(port, '127.0.0.1', resolve);
      });
      server = listening;
    },
    async shut() {
      const closing = server;
      server = null;
      for (const socket of sockets) {
        socket.destroy();
      }
      if (closing) {
        await new Promise<void>((resolve) => closing.close(() => resolve()));
      }
    },
  };
}

export async function startS3Server(): Promise<S3Server> {
  const motoPort = await freePort();
  const child: ChildProcess = spawn(MOTO, ['-H', '127.0.0.1', '-p', String(motoPort)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output = (output + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`moto_server exited with ${child.exitCode}: ${output}`);
    }
    try {
      await fetch(`${motoUrl}/`);
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server did not answer within 30 s: ${output}`);
      }
      await sleep(50);
    }
  }
  const port = await freePort();
  const front = relay(port, motoPort);
  await front.open();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'cesar-test',
      AWS_SECRET_ACCESS_KEY: 'cesar-test-secret',
    },
    async createBucket(prefix = 'cesar') {
      const bucket = `cesar-${randomUUID().slice(0, 13)}`;
      // moto checks no signature, so a plain request creates the bucket.
      const response = await fetch(`${motoUrl}/${bucket}`, { method: 'PUT' });
      if (!response.ok) {
        throw new Error(`creating bucket ${bucket} failed: ${response.status} ${await response.text()}`);
      }
      return `s3://${bucket}/${prefix}`;
    },
    async keys(bucket) {
      const listing = await (await fetch(`${motoUrl}/${bucket}?list-type=2&max-keys=1000`)).text();
      const objects = [...listing.matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1] ?? '');
      const uploads = await (await fetch(`${motoUrl}/${bucket}?uploads`)).text();
      const open = [...uploads.matchAll(/<Upload>[\s\S]*?<Key>([^<]*)<\/Key>/g)].map((match) => `${match[1] ?? ''} (unfinished upload)`);
      return [...objects, ...open];
    },
    pause: () => front.shut(),
    resume: () => front.open(),
    async stop() {
      await front.shut();
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    },
  };
}
