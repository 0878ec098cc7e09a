/**
 * The latency the job queue adds to a synchronous `POST /v1/audio/transcriptions` over the engine's own decode
 * time, for a 10 s clip: with the service idle, and with batch jobs queued and running on every worker.
 *
 *   CESAR_MODELS_DIR=/path/to/models node_modules/.bin/node scripts/bench-openai-latency.ts [--model tiny.en]
 *     [--workers 2] [--runs 5] [--batch 24]
 *
 * Per call it prints the client's wall time, the time inside the recognizer's decodes (`recognizer_ms` of the
 * job's log line, the engine's own work), what the service added (wall minus engine) and where that went:
 * waiting in the queue (created to claimed), the job outside the decodes (ffmpeg, VAD, IPC, database), and the
 * HTTP exchange (upload, waking the waiting request, the answer). Best and median per scenario at the end;
 * compare the scenarios of one run (the machine is shared and noisy). With batch jobs queued, the same clip sent
 * as a batch job is timed once too, to show what the interactive priority saves.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';

import { bundledFfmpegPath } from '../src/audio/ffmpeg.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createService } from '../src/service.ts';

const FIXTURES = path.join(import.meta.dirname, '..', 'contract-tests', 'fixtures');
const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny.en' },
    workers: { type: 'string', default: '2' },
    runs: { type: 'string', default: '5' },
    batch: { type: 'string', default: '24' },
  },
});
const modelsDir = process.env.CESAR_MODELS_DIR;
if (!modelsDir) {
  throw new Error('set CESAR_MODELS_DIR');
}
const workers = Number(values.workers);
const runs = Number(values.runs);
const batchJobs = Number(values.batch);

interface JobView {
  id: string;
  status: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
}

interface Measured {
  wallMs: number;
  engineMs: number;
  queueMs: number;
  jobOutsideEngineMs: number;
  httpMs: number;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-openai-'));
const dataDir = path.join(dir, 'data');
const clipFile = path.join(dir, 'clip-10s.flac');
const batchFile = path.join(dir, 'batch-33s.ogg');
await run(bundledFfmpegPath(), ['-loglevel', 'error', '-i', path.join(FIXTURES, 'jfk.ogg'), '-t', '10', '-ac', '1', '-ar', '16000', clipFile]);
await run(bundledFfmpegPath(), ['-loglevel', 'error', '-stream_loop', '2', '-i', path.join(FIXTURES, 'jfk.ogg'), '-c', 'copy', batchFile]);
const clip = new Blob([await readFile(clipFile)]);
const batchAudio = new Blob([await readFile(batchFile)]);

const lines: string[] = [];
const logger = createLogger({ sink: { write: (line: string) => lines.push(line) }, format: 'json', level: 'info' });
const config = loadConfig(
  { CESAR_PORT: '0', CESAR_DATA_DIR: dataDir, CESAR_MODELS_DIR: modelsDir, CESAR_DEFAULT_MODEL: values.model, CESAR_MAX_WORKERS: String(workers), CESAR_MAX_PENDING_JOBS: '100000' },
  process.cwd(),
);
const service = await createService(config, logger);
const { port } = await service.listen();
const base = `http://127.0.0.1:${port}`;

async function completedLine(jobId: string): Promise<{ recognizer_ms: number; elapsed_ms: number }> {
  for (;;) {
    for (const line of lines) {
      const entry = JSON.parse(line) as { msg?: string; job_id?: string; recognizer_ms?: number; elapsed_ms?: number };
      if (entry.msg === 'job completed' && entry.job_id === jobId) {
        return { recognizer_ms: entry.recognizer_ms ?? 0, elapsed_ms: entry.elapsed_ms ?? 0 };
      }
    }
    await sleep(10);
  }
}

async function job(id: string): Promise<JobView> {
  return (await (await fetch(`${base}/jobs/${id}`)).json()) as JobView;
}

async function syncCall(): Promise<Measured> {
  const form = new FormData();
  form.append('file', clip, 'clip-10s.flac');
  form.append('model', 'whisper-1');
  const started = performance.now();
  const response = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form });
  await response.text();
  const wallMs = performance.now() - started;
  if (response.status !== 200) {
    throw new Error(`answered ${response.status}`);
  }
  const id = response.headers.get('cesar-job-id') ?? '';
  const { recognizer_ms: engineMs, elapsed_ms: elapsedMs } = await completedLine(id);
  const view = await job(id);
  const queueMs = Date.parse(view.started_at ?? '') - Date.parse(view.created_at);
  const serverMs = Date.parse(view.completed_at ?? '') - Date.parse(view.created_at);
  return { wallMs, engineMs, queueMs, jobOutsideEngineMs: elapsedMs - engineMs, httpMs: wallMs - serverMs };
}

async function submitBatch(audio: Blob, name: string): Promise<string> {
  const form = new FormData();
  form.append('file', audio, name);
  return ((await (await fetch(`${base}/jobs`, { method: 'POST', body: form })).json()) as { id: string }).id;
}

async function waitFor(id: string): Promise<JobView> {
  for (;;) {
    const view = await job(id);
    if (view.status === 'completed' || view.status === 'failed' || view.status === 'canceled') {
      return view;
    }
    await sleep(20);
  }
}

const median = (numbers: number[]): number => {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
};
const ms = (value: number): string => `${Math.round(value)}`.padStart(6);

function report(scenario: string, measured: Measured[]): void {
  for (const [index, m] of measured.entries()) {
    process.stdout.write(
      `${scenario.padEnd(7)} run=${index + 1}  wall_ms=${ms(m.wallMs)}  engine_ms=${ms(m.engineMs)}  added_ms=${ms(m.wallMs - m.engineMs)}` +
        `  (queue_ms=${ms(m.queueMs)}  job_outside_engine_ms=${ms(m.jobOutsideEngineMs)}  http_ms=${ms(m.httpMs)})\n`,
    );
  }
  const added = measured.map((m) => m.wallMs - m.engineMs);
  const ratios = measured.map((m) => m.wallMs / m.engineMs);
  process.stdout.write(
    `${scenario.padEnd(7)} summary  added_ms best=${Math.round(Math.min(...added))} median=${Math.round(median(added))}` +
      `  wall/engine best=${Math.min(...ratios).toFixed(2)} median=${median(ratios).toFixed(2)}` +
      `  queue_ms median=${Math.round(median(measured.map((m) => m.queueMs)))}\n`,
  );
}

try {
  process.stdout.write(`model=${values.model} workers=${workers} runs=${runs} clip=10s batch_jobs=${batchJobs}x33s\n`);
  // Every worker loads the model first, so that no scenario pays for loading.
  await Promise.all(Array.from({ length: workers }, () => syncCall()));
  const idle: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    idle.push(await syncCall());
  }
  report('idle', idle);

  const batch = [];
  for (let i = 0; i < batchJobs; i++) {
    batch.push(await submitBatch(batchAudio, `batch-${i}.ogg`));
  }
  const loaded: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    loaded.push(await syncCall());
  }
  report('batch', loaded);
  const pending = (await Promise.all(batch.map(job))).filter((view) => view.status === 'pending').length;
  const started = performance.now();
  const asBatch = await waitFor(await submitBatch(clip, 'clip-as-batch.flac'));
  process.stdout.write(
    `batch   the same clip as a batch job behind ${pending} pending batch jobs: ${asBatch.status} after ${Math.round(performance.now() - started)} ms\n`,
  );
} finally {
  await service.close(0);
  await rm(dir, { recursive: true, force: true });
}
