/**
 * Full-load throughput: the service against the bare engine on the same clips, in the same run.
 *
 *   CESAR_MODELS_DIR=/path/to/models npm run bench:throughput -- [--workers 2] [--rounds 4] [--model tiny.en]
 *                                                                 [--clips /work/shared/speech] [--service DIR]
 *
 * The clips are every `en_*` file of the clips directory, in the order of its MANIFEST.tsv (or by name).
 * - service: a real server process (`src/main.ts`) with N workers, warmed up by one job per worker; every clip is
 *   uploaded at once (POST /jobs) and the wall time runs from the first upload to the last `job completed` line
 *   of the server's log (no polling, so the client adds no load while the jobs run).
 * - engine: N plain Node processes with the same model and decoding settings (greedy, one thread, token
 *   timestamps, default tail padding), warmed up the same way, each holding every clip as 16 kHz samples
 *   (decoded by ffmpeg before timing: the engine cannot read containers) and decoding a clip in <= 29.5 s
 *   pieces whenever the parent hands it one: the next clip goes to whichever process is free, in clip order,
 *   as the service's queue does.
 * Sides alternate within each round (engine first in odd rounds); the ratio is of the best wall times.
 * CPU seconds per audio second come from /proc/<pid>/stat before and after each round: the server process
 * itself, its reaped children (ffmpeg; cutime+cstime), its live worker processes, the engine processes, and
 * this benchmark process (it uploads, and shares the cores).
 */
import { execFile, fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

import { bundledFfmpegPath } from '../src/audio/ffmpeg.ts';
import { createModelCatalog } from '../src/transcription/models.ts';
import type { InstalledModel } from '../src/transcription/models.ts';

const SAMPLE_RATE = 16_000;
/**
 * The engine's limit per decode (2949 feature frames; one frame more and it truncates): the bare side cuts
 * there, which is the fewest decodes possible.
 */
const PIECE_SAMPLES = 29.5 * SAMPLE_RATE - 160;
/** Below 80 samples the engine crashes; the service skips windows under 0.1 s, so do the same here. */
const MIN_PIECE_SAMPLES = 1600;
const CLOCK_TICKS = 100;

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] !== undefined ? (process.argv[index + 1] as string) : fallback;
}

/** utime+stime and cutime+cstime of a process, in seconds; null when it is gone. */
function cpuOf(pid: number): { self: number; children: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; fields count from after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const at = (field: number): number => Number(fields[field - 3]);
    return { self: (at(14) + at(15)) / CLOCK_TICKS, children: (at(16) + at(17)) / CLOCK_TICKS };
  } catch {
    return null;
  }
}

function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const task of safeReaddir(`/proc/${pid}/task`)) {
    try {
      pids.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return pids;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------------------------
// Engine child: `bench-throughput.ts --engine-child <model json> <pcm dir> <clip count>`
// ---------------------------------------------------------------------------------------------------------------

interface SherpaRecognizer {
  createStream(): { acceptWaveform(wave: { samples: Float32Array; sampleRate: number }): void };
  decode(stream: unknown): void;
  getResult(stream: unknown): { text: string };
}

async function engineChild(): Promise<void> {
  const model = JSON.parse(process.argv[3] ?? '{}') as InstalledModel;
  const pcmDir = process.argv[4] ?? '';
  const count = Number(process.argv[5]);
  const sherpa = require('sherpa-onnx-node') as { OfflineRecognizer: { createAsync(config: unknown): Promise<SherpaRecognizer> } };
  // The service's decoding settings (src/transcription/transcribe-task.ts).
  const recognizer = await sherpa.OfflineRecognizer.createAsync({
    modelConfig: {
      whisper: {
        encoder: model.files.encoder,
        decoder: model.files.decoder,
        language: '',
        task: 'transcribe',
        tailPaddings: -1,
        enableTokenTimestamps: model.wordTimestamps ? 1 : 0,
      },
      tokens: model.files.tokens,
      numThreads: 1,
      provider: 'cpu',
      debug: 0,
    },
    decodingMethod: 'greedy_search',
  });
  const clips: Float32Array[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = await readFile(path.join(pcmDir, `${i}.pcm`));
    const samples = new Float32Array(bytes.length / 2);
    for (let j = 0; j < samples.length; j++) {
      samples[j] = bytes.readInt16LE(j * 2) / 32768;
    }
    clips.push(samples);
  }
  const decodeClip = (samples: Float32Array): string[] => {
    const texts: string[] = [];
    for (let start = 0; start < samples.length; start += PIECE_SAMPLES) {
      const piece = samples.subarray(start, Math.min(start + PIECE_SAMPLES, samples.length));
      if (piece.length >= MIN_PIECE_SAMPLES) {
        const stream = recognizer.createStream();
        stream.acceptWaveform({ samples: piece, sampleRate: SAMPLE_RATE });
        recognizer.decode(stream);
        texts.push(recognizer.getResult(stream).text);
      }
    }
    return texts;
  };
  process.on('message', (message: { clip: number }) => {
    const samples = clips[message.clip];
    if (samples) {
      const texts = decodeClip(samples);
      process.send?.({ done: message.clip, chars: texts.join(' ').length });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ ready: true });
}

// ---------------------------------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------------------------------

interface Clip {
  name: string;
  file: string;
  bytes: Buffer;
  seconds: number;
}

async function listClips(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => name.startsWith('en_'));
  try {
    const manifest = (await readFile(path.join(dir, 'MANIFEST.tsv'), 'utf8')).split('\n').map((line) => line.split('\t')[0] ?? '');
    return manifest.filter((name) => names.includes(name)).concat(names.filter((name) => !manifest.includes(name)).sort());
  } catch {
    return names.sort();
  }
}

interface Round {
  wallSeconds: number;
  cpu: Record<string, number>;
  load: number;
}

class EnginePool {
  private readonly children: ChildProcess[] = [];
  private constructor() {}

  static async start(workers: number, model: InstalledModel, pcmDir: string, count: number): Promise<EnginePool> {
    const pool = new EnginePool();
    for (let i = 0; i < workers; i++) {
      const child = fork(import.meta.filename, ['--engine-child', JSON.stringify(model), pcmDir, String(count)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      pool.children.push(child);
    }
    await Promise.all(pool.children.map((child) => new Promise((resolve) => child.once('message', resolve))));
    return pool;
  }

  get pids(): number[] {
    return this.children.map((child) => child.pid ?? 0);
  }

  /** Hands the clips out in order to whichever process is free; resolves when the last one is decoded. */
  async run(clips: number[]): Promise<void> {
    const queue = [...clips];
    await Promise.all(
      this.children.map(async (child) => {
        for (let clip = queue.shift(); clip !== undefined; clip = queue.shift()) {
          const done = new Promise((resolve) => child.once('message', resolve));
          child.send({ clip });
          await done;
        }
      }),
    );
  }

  stop(): void {
    for (const child of this.children) {
      child.disconnect();
    }
  }
}

interface Completion {
  jobId: string;
  durationSeconds: number;
  recognizerMs: number;
  taskMs: number;
  elapsedMs: number;
  decodedSeconds: number;
  decodes: number;
}

class Server {
  private readonly child: ChildProcess;
  readonly base: string;
  private readonly waiting = new Map<string, (completion: Completion) => void>();
  private readonly early = new Map<string, Completion>();

  private constructor(child: ChildProcess, base: string) {
    this.child = child;
    this.base = base;
  }

  static async start(serviceDir: string, workers: number, model: string, modelsDir: string, dataDir: string): Promise<Server> {
    const child = spawn(process.execPath, [path.join(serviceDir, 'src', 'main.ts'), '--port', '0', '--workers', String(workers), '--default-model', model, '--log-format', 'json'], {
      env: { ...process.env, CESAR_MODELS_DIR: modelsDir, CESAR_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    let server: Server | null = null;
    const base = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
      lines.on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        if (entry.msg === 'cesar listening') {
          resolve(String(entry.url));
        } else if (entry.msg === 'job completed' && server) {
          server.completed(entry);
        } else if (entry.level === 'error' || entry.msg === 'job failed') {
          process.stderr.write(`server: ${line}\n`);
        }
      });
    });
    server = new Server(child, base);
    return server;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  private completed(entry: Record<string, unknown>): void {
    const completion: Completion = {
      jobId: String(entry.job_id),
      durationSeconds: Number(entry.duration_seconds),
      recognizerMs: Number(entry.recognizer_ms),
      taskMs: Number(entry.task_ms),
      elapsedMs: Number(entry.elapsed_ms),
      decodedSeconds: Number(entry.decoded_seconds ?? NaN),
      decodes: Number(entry.decodes ?? NaN),
    };
    const resolve = this.waiting.get(completion.jobId);
    if (resolve) {
      this.waiting.delete(completion.jobId);
      resolve(completion);
    } else {
      this.early.set(completion.jobId, completion);
    }
  }

  private completion(id: string): Promise<Completion> {
    const done = this.early.get(id);
    if (done) {
      this.early.delete(id);
      return Promise.resolve(done);
    }
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  /** Uploads every clip at once; resolves when the last job is completed. */
  async run(clips: Clip[]): Promise<Completion[]> {
    const ids = await Promise.all(
      clips.map(async (clip) => {
        const form = new FormData();
        form.append('file', new Blob([clip.bytes]), clip.name);
        const response = await fetch(`${this.base}/jobs`, { method: 'POST', body: form });
        const body = (await response.json()) as { id?: string };
        if (response.status !== 202 || !body.id) {
          throw new Error(`POST /jobs ${clip.name}: ${response.status} ${JSON.stringify(body)}`);
        }
        return body.id;
      }),
    );
    return Promise.all(ids.map((id) => this.completion(id)));
  }

  /** The live worker processes: every child of the server but a running ffmpeg. */
  workerPids(): number[] {
    return childPids(this.pid).filter((pid) => {
      try {
        return !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ffmpeg');
      } catch {
        return false;
      }
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

async function main(): Promise<void> {
  const workers = Number(option('workers', '2'));
  const rounds = Number(option('rounds', '4'));
  const modelName = option('model', 'tiny.en');
  const clipsDir = option('clips', '/work/shared/speech');
  // Another checkout of the service (an older commit, for a before/after figure); this one by default.
  const serviceDir = path.resolve(option('service', path.join(import.meta.dirname, '..')));
  const modelsDir = process.env.CESAR_MODELS_DIR;
  if (!modelsDir) {
    throw new Error('set CESAR_MODELS_DIR');
  }
  const model = (await createModelCatalog(modelsDir).scan()).models.find((candidate) => candidate.name === modelName);
  if (!model) {
    throw new Error(`model ${modelName} is not installed in ${modelsDir}`);
  }
  const ffmpeg = bundledFfmpegPath();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-throughput-'));
  let server: Server | null = null;
  let engine: EnginePool | null = null;
  try {
    const names = await listClips(clipsDir);
    const clips: Clip[] = [];
    for (const [index, name] of names.entries()) {
      const file = path.join(clipsDir, name);
      const pcm = path.join(tmp, `${index}.pcm`);
      await promisify(execFile)(ffmpeg, ['-loglevel', 'error', '-i', file, '-ac', '1', '-ar', String(SAMPLE_RATE), '-f', 's16le', '-acodec', 'pcm_s16le', pcm]);
      clips.push({ name, file, bytes: await readFile(file), seconds: (await readFile(pcm)).length / 2 / SAMPLE_RATE });
    }
    const audioSeconds = sum(clips.map((clip) => clip.seconds));
    out(`service: ${serviceDir}`);
    out(`clips: ${clips.length} (${names[0]} ... ${names.at(-1)}), ${audioSeconds.toFixed(1)} s of audio; model ${modelName}; ${workers} workers; ${rounds} rounds`);
    out(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((value) => value.toFixed(2)).join(' ')}`);

    engine = await EnginePool.start(workers, model, tmp, clips.length);
    const dataDir = path.join(tmp, 'data');
    server = await Server.start(serviceDir, workers, modelName, modelsDir, dataDir);
    // Warm-up: every process loads its model and decodes once before timing starts.
    const warm = clips.reduce((best, clip) => (clip.seconds < best.seconds ? clip : best));
    await engine.run(Array.from({ length: workers }, () => clips.indexOf(warm)));
    await server.run(Array.from({ length: workers }, () => warm));

    const engineRounds: Round[] = [];
    const serviceRounds: Round[] = [];
    const completions: Completion[][] = [];
    const measureEngine = async (): Promise<void> => {
      const pool = engine as EnginePool;
      const before = pool.pids.map((pid) => cpuOf(pid)?.self ?? 0);
      const started = performance.now();
      await pool.run(clips.map((_, index) => index));
      const wallSeconds = (performance.now() - started) / 1000;
      const after = pool.pids.map((pid) => cpuOf(pid)?.self ?? 0);
      engineRounds.push({ wallSeconds, cpu: { engine: sum(after) - sum(before) }, load: os.loadavg()[0] ?? 0 });
    };
    const measureService = async (): Promise<void> => {
      const running = server as Server;
      const pids = running.workerPids();
      const serverBefore = cpuOf(running.pid);
      const workersBefore = pids.map((pid) => cpuOf(pid)?.self ?? 0);
      const benchBefore = process.cpuUsage();
      const started = performance.now();
      completions.push(await running.run(clips));
      const wallSeconds = (performance.now() - started) / 1000;
      const bench = process.cpuUsage(benchBefore);
      const serverAfter = cpuOf(running.pid);
      const workersAfter = pids.map((pid) => cpuOf(pid)?.self ?? 0);
      if (running.workerPids().join() !== pids.join()) {
        out('  (a worker process was replaced during this round: its CPU is counted under ffmpeg)');
      }
      serviceRounds.push({
        wallSeconds,
        cpu: {
          server: (serverAfter?.self ?? 0) - (serverBefore?.self ?? 0),
          ffmpeg: (serverAfter?.children ?? 0) - (serverBefore?.children ?? 0),
          workers: sum(workersAfter) - sum(workersBefore),
          bench: (bench.user + bench.system) / 1e6,
        },
        load: os.loadavg()[0] ?? 0,
      });
    };
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? [measureEngine, measureService] : [measureService, measureEngine];
      for (const measure of order) {
        await measure();
      }
      const e = engineRounds.at(-1) as Round;
      const s = serviceRounds.at(-1) as Round;
      out(
        `round ${round}: engine ${e.wallSeconds.toFixed(2)} s, service ${s.wallSeconds.toFixed(2)} s, ratio ${(s.wallSeconds / e.wallSeconds).toFixed(3)}  (load ${s.load.toFixed(2)})`,
      );
    }
    const bestEngine = engineRounds.reduce((best, round) => (round.wallSeconds < best.wallSeconds ? round : best));
    const bestService = serviceRounds.reduce((best, round) => (round.wallSeconds < best.wallSeconds ? round : best));
    const perAudio = (seconds: number): string => `${seconds.toFixed(2)} s = ${(seconds / audioSeconds).toFixed(4)} s/s`;
    const mean = (rows: Round[], key: string): number => sum(rows.map((row) => row.cpu[key] ?? 0)) / rows.length;
    out('');
    out(`best wall: engine ${bestEngine.wallSeconds.toFixed(2)} s, service ${bestService.wallSeconds.toFixed(2)} s`);
    out(`RATIO service/engine (best of ${rounds}): ${(bestService.wallSeconds / bestEngine.wallSeconds).toFixed(3)}`);
    out(`CPU per round (mean of ${rounds}), seconds and CPU seconds per audio second:`);
    out(`  engine processes        ${perAudio(mean(engineRounds, 'engine'))}`);
    out(`  service workers         ${perAudio(mean(serviceRounds, 'workers'))}`);
    out(`  service server process  ${perAudio(mean(serviceRounds, 'server'))}`);
    out(`  service ffmpeg children ${perAudio(mean(serviceRounds, 'ffmpeg'))}`);
    out(`  benchmark client        ${perAudio(mean(serviceRounds, 'bench'))}  (uploads; shares the cores with the service side)`);
    const serviceTotal = mean(serviceRounds, 'workers') + mean(serviceRounds, 'server') + mean(serviceRounds, 'ffmpeg');
    out(`  service total           ${perAudio(serviceTotal)}  (${(serviceTotal / mean(engineRounds, 'engine')).toFixed(3)}x the engine's CPU)`);
    const all = completions.flat();
    const recognizer = sum(all.map((entry) => entry.recognizerMs)) / 1000 / completions.length;
    const task = sum(all.map((entry) => entry.taskMs)) / 1000 / completions.length;
    const elapsed = sum(all.map((entry) => entry.elapsedMs)) / 1000 / completions.length;
    const decoded = sum(all.map((entry) => entry.decodedSeconds)) / completions.length;
    const decodes = sum(all.map((entry) => entry.decodes)) / completions.length;
    const pieces = sum(clips.map((clip) => Math.ceil((clip.seconds * SAMPLE_RATE) / PIECE_SAMPLES)));
    out(`service job time per round (wall, summed over jobs): claim to completion ${elapsed.toFixed(2)} s, worker task ${task.toFixed(2)} s, inside decodes ${recognizer.toFixed(2)} s`);
    if (Number.isFinite(decoded)) {
      out(
        `audio decoded per round: service ${decoded.toFixed(1)} s in ${decodes} windows (VAD spans with padding), engine ${audioSeconds.toFixed(1)} s in ${pieces} pieces`,
      );
    }
    out(`load average at the end: ${os.loadavg().map((value) => value.toFixed(2)).join(' ')}`);
  } finally {
    engine?.stop();
    await server?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--engine-child') {
  await engineChild();
} else {
  await main();
}
