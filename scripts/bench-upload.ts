/**
 * Benchmark of audio intake. Prints numbers, asserts nothing.
 *
 * 1. Upload: starts the real server (`src/main.ts`) in a child process, streams a multipart upload of
 *    BENCH_UPLOAD_MB (default 1024) zero bytes to `POST /jobs`, and reports the throughput and the server's
 *    resident memory growth sampled from /proc during the upload (the goal is under 64 MB: the file must be
 *    streamed to disk, never held in memory). The server inherits NODE_OPTIONS: most of the growth is V8's young
 *    generation sizing itself to the allocation rate, which `--max-semi-space-size=1` caps; it does not grow
 *    with the upload (compare BENCH_UPLOAD_MB=256).
 * 2. Normalization: loops the speech fixture into BENCH_AUDIO_SECONDS (default 600) of audio in a few
 *    containers and times `ffmpeg.normalize` on each, in audio seconds decoded per wall-clock second.
 *
 * Run: node_modules/.bin/node scripts/bench-upload.ts   (Linux: reads /proc/<pid>/status)
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { bundledFfmpegPath, createFfmpeg } from '../src/audio/ffmpeg.ts';

const ROOT = path.join(import.meta.dirname, '..');
const UPLOAD_MB = Number(process.env.BENCH_UPLOAD_MB ?? 1024);
const AUDIO_SECONDS = Number(process.env.BENCH_AUDIO_SECONDS ?? 600);

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
  return kb * 1024;
}

async function benchUpload(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-'));
  const port = await freePort();
  const server = spawn(process.execPath, [path.join(ROOT, 'src', 'main.ts')], {
    env: {
      ...process.env,
      CESAR_PORT: String(port),
      CESAR_DATA_DIR: dataDir,
      CESAR_MAX_UPLOAD_SIZE_MB: String(UPLOAD_MB + 16),
      CESAR_MAX_WORKERS: '1',
      // The default model need not exist: a 422 after the upload is stored measures the same streaming.
      CESAR_DEFAULT_MODEL: process.env.CESAR_DEFAULT_MODEL ?? 'tiny.en',
      // ... and must not be downloaded meanwhile.
      CESAR_OFFLINE: 'true',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await fetch(`http://127.0.0.1:${port}/health`);
        break;
      } catch (error) {
        if (attempt > 200) {
          throw error;
        }
        await sleep(100);
      }
    }
    await sleep(500);
    const pid = server.pid ?? 0;
    const baseline = await rssBytes(pid);
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssBytes(pid));
        await sleep(50);
      }
    })();

    const boundary = 'cesarbench';
    const head = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.wav"\r\ncontent-type: audio/wav\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const fileBytes = UPLOAD_MB * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024);
    const started = performance.now();
    const request = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/jobs',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + fileBytes + tail.length) },
    });
    const responded = once(request, 'response') as Promise<[http.IncomingMessage]>;
    request.write(head);
    for (let sent = 0; sent < fileBytes; sent += chunk.length) {
      if (!request.write(chunk)) {
        await once(request, 'drain');
      }
    }
    request.end(tail);
    const [response] = await responded;
    response.resume();
    await once(response, 'end');
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    print(`upload: ${UPLOAD_MB} MB in ${seconds.toFixed(2)} s = ${(UPLOAD_MB / seconds).toFixed(1)} MB/s (answer ${response.statusCode})`);
    print(`server RSS: baseline ${(baseline / 2 ** 20).toFixed(1)} MB, peak ${(peak / 2 ** 20).toFixed(1)} MB, growth ${((peak - baseline) / 2 ** 20).toFixed(1)} MB (goal < 64 MB)`);
  } finally {
    server.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function benchNormalize(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-audio-'));
  const run = promisify(execFile);
  const ffmpegPath = bundledFfmpegPath();
  const ffmpeg = createFfmpeg({ binaryPath: ffmpegPath, timeoutMs: 600_000 });
  const source = path.join(ROOT, 'contract-tests', 'fixtures', 'jfk.ogg');
  const loops = String(Math.ceil(AUDIO_SECONDS / 11));
  const variants: [name: string, args: string[]][] = [
    ['wav-44k-stereo', ['-ac', '2', '-ar', '44100', '-c:a', 'pcm_s16le']],
    ['mp3', ['-ac', '1', '-ar', '44100', '-c:a', 'libmp3lame', '-b:a', '64k']],
    ['ogg-opus', ['-c:a', 'libopus', '-b:a', '32k']],
    ['m4a-aac', ['-c:a', 'aac', '-b:a', '64k']],
  ];
  try {
    for (const [name, args] of variants) {
      const extension = name.split('-')[0] === 'ogg' ? 'ogg' : name.split('-')[0] ?? 'bin';
      const input = path.join(dir, `long.${extension}`);
      await run(ffmpegPath, ['-nostdin', '-loglevel', 'error', '-stream_loop', loops, '-i', source, '-t', String(AUDIO_SECONDS), ...args, '-y', input]);
      const started = performance.now();
      const audio = await ffmpeg.normalize(input, path.join(dir, 'out.pcm'), new AbortController().signal);
      const seconds = (performance.now() - started) / 1000;
      print(`normalize ${name}: ${audio.durationSeconds.toFixed(0)} s of audio in ${seconds.toFixed(2)} s = ${(audio.durationSeconds / seconds).toFixed(0)} audio s/s`);
      await rm(input);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await benchUpload();
await benchNormalize();
