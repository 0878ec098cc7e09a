/**
 * Real-time factor of the whole service per model and worker count, and the share of job time spent outside
 * the recognizer (ffmpeg, VAD, model loading, IPC, database).
 *
 *   CESAR_MODELS_DIR=/path/to/models node_modules/.bin/node scripts/bench-rtf.ts [models=tiny.en,base] [seconds=120]
 *
 * The audio is the English fixtures back to back with short pauses, repeated to about `seconds`: dense speech,
 * the case where the recognizer matters most. Every worker first runs a warm-up job (model loading is then
 * measured apart). Each configuration then runs two jobs per worker at once. It prints, per configuration:
 * - rtf_job: a job's processing seconds (claim to completion) per audio second, averaged over jobs;
 * - rtf_throughput: wall seconds per audio second over all jobs together (what n workers deliver);
 * - outside_recognizer: (job time - time inside the recognizer's decodes) / job time; goal under 5 %.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../src/audio/ffmpeg.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createService } from '../src/service.ts';

const FIXTURES = path.join(import.meta.dirname, '..', 'contract-tests', 'fixtures');
const CLIPS = ['jfk.ogg', 'ldc93s1.ogg', 'librispeech-61-70968-0000.ogg', 'librispeech-1272-128104-0000.ogg', 'ljspeech-001-0005.ogg'];
const run = promisify(execFile);

const models = (process.argv[2] ?? 'tiny.en,base').split(',');
const targetSeconds = Number(process.argv[3] ?? 120);
const modelsDir = process.env.CESAR_MODELS_DIR;
if (!modelsDir) {
  throw new Error('set CESAR_MODELS_DIR');
}

async function speechFile(dir: string): Promise<{ file: string; seconds: number }> {
  const file = path.join(dir, 'speech.flac');
  const inputs: string[] = [];
  const filters: string[] = [];
  let seconds = 0;
  let count = 0;
  while (seconds < targetSeconds) {
    for (const clip of CLIPS) {
      inputs.push('-i', path.join(FIXTURES, clip));
      filters.push(`[${count}:a]aresample=16000,apad=pad_len=11200[a${count}]`);
      count++;
    }
    seconds += 11 + 2.9 + 4.9 + 5.9 + 8.1 + 5 * 0.7;
  }
  const chain = `${filters.join(';')};${Array.from({ length: count }, (_, i) => `[a${i}]`).join('')}concat=n=${count}:v=0:a=1[out]`;
  await run(bundledFfmpegPath(), ['-loglevel', 'error', ...inputs, '-filter_complex', chain, '-map', '[out]', '-ac', '1', '-ar', '16000', file]);
  return { file, seconds };
}

interface Completed {
  job_id: string;
  duration_seconds: number;
  elapsed_ms: number;
  recognizer_ms: number;
  task_ms: number;
}

async function measure(model: string, workers: number, audio: Blob): Promise<string> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-'));
  const lines: string[] = [];
  const logger = createLogger({ sink: { write: (line: string) => lines.push(line) }, format: 'json', level: 'info' });
  const config = loadConfig(
    { CESAR_PORT: '0', CESAR_DATA_DIR: dataDir, CESAR_MODELS_DIR: modelsDir, CESAR_DEFAULT_MODEL: model, CESAR_MAX_WORKERS: String(workers) },
    process.cwd(),
  );
  const service = await createService(config, logger);
  const { port } = await service.listen();
  const base = `http://127.0.0.1:${port}`;
  const submit = async (body: Blob, name: string): Promise<string> => {
    const form = new FormData();
    form.append('file', body, name);
    const response = await fetch(`${base}/jobs`, { method: 'POST', body: form });
    return ((await response.json()) as { id: string }).id;
  };
  const finish = async (ids: string[]): Promise<void> => {
    for (const id of ids) {
      for (;;) {
        const job = (await (await fetch(`${base}/jobs/${id}`)).json()) as { status: string };
        if (job.status === 'completed') {
          break;
        }
        if (job.status === 'failed' || job.status === 'canceled') {
          throw new Error(`job ${id} ${job.status}`);
        }
        await sleep(50);
      }
    }
  };
  try {
    const warmup = new Blob([await readFile(path.join(FIXTURES, 'ldc93s1.ogg'))]);
    await finish(await Promise.all(Array.from({ length: workers }, () => submit(warmup, 'warmup.ogg'))));
    lines.length = 0;
    const started = performance.now();
    const ids = await Promise.all(Array.from({ length: 2 * workers }, () => submit(audio, 'speech.flac')));
    await finish(ids);
    const wallSeconds = (performance.now() - started) / 1000;
    const completed = lines
      .map((line) => JSON.parse(line) as { msg?: string } & Partial<Completed>)
      .filter((entry): entry is Completed & { msg: string } => entry.msg === 'job completed' && ids.includes(entry.job_id ?? ''));
    const audioSeconds = completed.reduce((sum, job) => sum + job.duration_seconds, 0);
    const jobMs = completed.reduce((sum, job) => sum + job.elapsed_ms, 0);
    const recognizerMs = completed.reduce((sum, job) => sum + job.recognizer_ms, 0);
    const taskMs = completed.reduce((sum, job) => sum + job.task_ms, 0);
    return [
      model.padEnd(8),
      `workers=${workers}`,
      `jobs=${completed.length}`,
      `audio=${audioSeconds.toFixed(0)}s`,
      `rtf_job=${(jobMs / 1000 / audioSeconds).toFixed(3)}`,
      `rtf_throughput=${(wallSeconds / audioSeconds).toFixed(3)}`,
      `outside_recognizer=${((100 * (jobMs - recognizerMs)) / jobMs).toFixed(1)}%`,
      `(in worker, outside decodes: ${((100 * (taskMs - recognizerMs)) / jobMs).toFixed(1)}%; outside worker: ${((100 * (jobMs - taskMs)) / jobMs).toFixed(1)}%)`,
    ].join('  ');
  } finally {
    await service.close(0);
    await rm(dataDir, { recursive: true, force: true });
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-audio-'));
try {
  const { file } = await speechFile(dir);
  const audio = new Blob([await readFile(file)]);
  for (const model of models) {
    for (const workers of [1, 2]) {
      process.stdout.write(`${await measure(model, workers, audio)}\n`);
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
