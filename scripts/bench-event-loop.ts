/**
 * Benchmark: how responsive the server stays while every worker decodes.
 *
 * Starts the service in this process (as `main.ts` would), submits one long job per worker, and while they run
 * measures the server's event-loop delay and the latency of `GET /health`. Prints the figures; asserts nothing.
 *
 *   CESAR_MODELS_DIR=../shared/models npm exec -- node scripts/bench-event-loop.ts [--seconds 120] [--model tiny.en]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';

import { bundledFfmpegPath } from '../src/audio/ffmpeg.ts';
import { loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/logger.ts';
import { createService } from '../src/service.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '120' }, model: { type: 'string', default: 'tiny.en' }, workers: { type: 'string', default: '2' } },
});
const audioSeconds = Number(values.seconds);
const workers = Number(values.workers);
const modelsDir = process.env.CESAR_MODELS_DIR;
if (!modelsDir) {
  process.stderr.write('set CESAR_MODELS_DIR to the models directory\n');
  process.exit(2);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-'));
const audio = path.join(dir, 'long.ogg');
const fixture = path.join(import.meta.dirname, '..', 'contract-tests', 'fixtures', 'jfk.ogg');
await promisify(execFile)(bundledFfmpegPath(), ['-loglevel', 'error', '-stream_loop', '-1', '-i', fixture, '-t', String(audioSeconds), '-c:a', 'libopus', audio]);

const config = loadConfig(
  { CESAR_PORT: '0', CESAR_DATA_DIR: path.join(dir, 'data'), CESAR_MODELS_DIR: modelsDir, CESAR_DEFAULT_MODEL: values.model, CESAR_MAX_WORKERS: String(workers) },
  process.cwd(),
);
const service = await createService(config, silentLogger);
const { port } = await service.listen();
const base = `http://127.0.0.1:${port}`;

const body = await readFile(audio);
const ids: string[] = [];
for (let i = 0; i < workers; i++) {
  const form = new FormData();
  form.append('file', new Blob([body]), 'long.ogg');
  const response = await fetch(`${base}/jobs`, { method: 'POST', body: form });
  ids.push(((await response.json()) as { id: string }).id);
}

const loop = monitorEventLoopDelay({ resolution: 5 });
const healthMs: number[] = [];
const started = performance.now();
let running = true;
let sawAllProcessing = false;
loop.enable();
while (running) {
  const t0 = performance.now();
  const health = await fetch(`${base}/health`);
  await health.arrayBuffer();
  healthMs.push(performance.now() - t0);
  const statuses = await Promise.all(ids.map(async (id) => ((await (await fetch(`${base}/jobs/${id}`)).json()) as { status: string }).status));
  sawAllProcessing ||= statuses.every((status) => status === 'processing');
  running = statuses.some((status) => status === 'pending' || status === 'processing');
  await sleep(50);
}
loop.disable();
const wallSeconds = (performance.now() - started) / 1000;
await service.close(0);
await rm(dir, { recursive: true, force: true });

const sorted = [...healthMs].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (ns: number) => (ns / 1e6).toFixed(1);
process.stdout.write(
  [
    `model ${values.model}, ${workers} workers, ${workers} jobs of ${audioSeconds} s audio (all decoding at once: ${sawAllProcessing})`,
    `wall time                 ${wallSeconds.toFixed(1)} s (${((workers * audioSeconds) / wallSeconds).toFixed(1)} audio s per s)`,
    `event-loop delay (ms)     p50 ${ms(loop.percentile(50))}  p99 ${ms(loop.percentile(99))}  max ${ms(loop.max)}`,
    `GET /health latency (ms)  p50 ${pct(50).toFixed(1)}  p99 ${pct(99).toFixed(1)}  max ${(sorted.at(-1) ?? NaN).toFixed(1)}  (${sorted.length} requests)`,
    '',
  ].join('\n'),
);
