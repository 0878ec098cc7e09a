/**
 * Benchmark of stalled uploads (issue 13). Prints numbers, asserts nothing.
 *
 * Starts the real server (`src/main.ts`) under `ulimit -n BENCH_OPEN_FILES` (default 1024), opens BENCH_STALLED
 * connections (default 600, ten at a time) that each send the headers of a 10 MB multipart upload and its first
 * 64 KiB, then nothing. Reports the server's open files (/proc/<pid>/fd) before and while they stall, the latency
 * of `GET /health` (best and worst of 5) while they stall, what each client was answered and how long after it
 * opened its connection was closed, and how many partial files are left in `uploads/` once they are all closed.
 * The server's settings come from the environment (CESAR_UPLOAD_IDLE_TIMEOUT_MS, CESAR_MAX_CONCURRENT_UPLOADS).
 *
 * Run: node_modules/.bin/node scripts/bench-stalled-uploads.ts   (Linux: reads /proc/<pid>/fd)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = path.join(import.meta.dirname, '..');
const STALLED = Number(process.env.BENCH_STALLED ?? 600);
const OPEN_FILES = Number(process.env.BENCH_OPEN_FILES ?? 1024);
/** Give up waiting for the stalled connections to close after this long (Node's own request timeout is 300 s). */
const WAIT_MS = Number(process.env.BENCH_WAIT_MS ?? 60_000);

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

interface Client {
  openedMs: number;
  answer: string;
  closedMs: number | null;
  error: string | null;
}

function stall(port: number): Promise<Client> {
  return new Promise((resolve) => {
    const client: Client = { openedMs: Date.now(), answer: '', closedMs: null, error: null };
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('data', (chunk: Buffer) => {
      client.answer += chunk.toString('latin1');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      client.error = error.code ?? error.message;
      resolve(client);
    });
    socket.on('close', () => {
      client.closedMs = Date.now();
    });
    socket.on('connect', () => {
      const part = '--b\r\nContent-Disposition: form-data; name="file"; filename="s.ogg"\r\nContent-Type: audio/ogg\r\n\r\n';
      socket.write(`POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n${part}`);
      socket.write(Buffer.alloc(64 * 1024, 9), () => resolve(client));
    });
  });
}

async function health(baseUrl: string): Promise<number | string> {
  const start = performance.now();
  try {
    const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(30_000) });
    await response.text();
    return response.status === 200 ? performance.now() - start : `status ${response.status}`;
  } catch (error) {
    return (error as Error).cause instanceof Error ? ((error as Error).cause as NodeJS.ErrnoException).code ?? 'failed' : (error as Error).name;
  }
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-stall-'));
const server = spawn('/bin/sh', ['-c', `ulimit -n ${OPEN_FILES} && exec "$0" src/main.ts`, process.execPath], {
  cwd: ROOT,
  env: { ...process.env, CESAR_PORT: '0', CESAR_DATA_DIR: dataDir, CESAR_LOG_FORMAT: 'json' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const lines = createInterface({ input: server.stdout });
let baseUrl = '';
for await (const line of lines) {
  const parsed = JSON.parse(line) as { msg: string; url?: string };
  if (parsed.msg === 'cesar listening') {
    baseUrl = parsed.url ?? '';
    break;
  }
}
lines.on('line', () => undefined);
const pid = server.pid ?? 0;
const port = Number(new URL(baseUrl).port);
const openFiles = async (): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length;

print(`stalled uploads: ${STALLED} connections, server open-file limit ${OPEN_FILES}`);
print(`  idle timeout ${process.env.CESAR_UPLOAD_IDLE_TIMEOUT_MS ?? 'default'} ms, upload cap ${process.env.CESAR_MAX_CONCURRENT_UPLOADS ?? 'default'}`);
const before = await health(baseUrl);
print(`  open files before: ${await openFiles()}; /health ${typeof before === 'number' ? before.toFixed(0) : before} ms`);
const clients: Client[] = [];
for (let i = 0; i < STALLED; i += 10) {
  clients.push(...(await Promise.all(Array.from({ length: Math.min(10, STALLED - i) }, () => stall(port)))));
}
const peak = await openFiles();
const latencies: (number | string)[] = [];
for (let i = 0; i < 5; i++) {
  latencies.push(await health(baseUrl));
}
const numeric = latencies.filter((value): value is number => typeof value === 'number');
print(`  open files while stalled: ${peak}`);
print(`  /health while stalled: ${numeric.length}/5 answered, best ${Math.min(...numeric).toFixed(0)} ms, worst ${Math.max(...numeric).toFixed(0)} ms${numeric.length < 5 ? `; failures: ${latencies.filter((value) => typeof value === 'string').join(', ')}` : ''}`);
const deadline = Date.now() + WAIT_MS;
while (clients.some((client) => client.closedMs === null && client.error === null) && Date.now() < deadline) {
  await sleep(100);
}
const answers = new Map<string, number[]>();
for (const client of clients) {
  const status = /^HTTP\/1\.1 (\d{3})/.exec(client.answer)?.[1] ?? (client.error ? `error ${client.error}` : client.closedMs === null ? 'still open' : 'closed, no answer');
  const list = answers.get(status) ?? [];
  list.push(client.closedMs === null ? NaN : client.closedMs - client.openedMs);
  answers.set(status, list);
}
for (const [status, times] of answers) {
  const closed = times.filter((time) => !Number.isNaN(time)).sort((a, b) => a - b);
  const range = closed.length > 0 ? `closed after ${closed[0]}..${closed.at(-1)} ms (median ${closed[Math.floor(closed.length / 2)]} ms)` : `not closed within ${WAIT_MS} ms`;
  print(`  ${status}: ${times.length} clients, ${range}`);
}
await sleep(500);
print(`  partial files left in uploads/: ${(await readdir(path.join(dataDir, 'uploads'))).length}; open files after: ${await openFiles()}`);
server.kill('SIGKILL');
await once(server, 'exit');
await rm(dataDir, { recursive: true, force: true });
process.exit(0);
