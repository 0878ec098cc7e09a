/**
 * Scale-out: real node processes on one PostgreSQL and one S3 bucket (moto), as `contract-tests/scale-out.nodes.test.ts`
 * runs them. Prints numbers, asserts nothing.
 *
 *   CESAR_MODELS_DIR=/work/shared/models npm run bench:scale-out -- [--jobs 20] [--rounds 2] [--kills 3] [--lease-ms 10000]
 *
 * (a) Job throughput with 1, then 2 worker nodes (`--role worker`, CESAR_MAX_WORKERS=1 each) behind one API node
 *     (`--role api`): each worker is warmed up with one job, then `--jobs` real clips (contract-tests/fixtures,
 *     in turn) are uploaded at once; the wall time runs from the first upload to the last `job completed` line of
 *     the workers' logs. Audio seconds per wall second, best of `--rounds`, and the 2-vs-1 ratio. The nodes run
 *     on this one machine, so two worker nodes share its cores: the ratio says how well the queue spreads work,
 *     not what a second machine adds.
 * (b) Recovery: two worker nodes; a 33 s job; the worker transcribing it is SIGKILLed; the time until the other
 *     worker starts it again (pg-boss's heartbeat window is max(10 s, CESAR_LEASE_MS), its monitor runs every
 *     second, then the retry's backoff). Best and median of `--kills`; each killed worker is replaced.
 * The queue alone (enqueue/claim throughput, pickup latency with 100,000 jobs, PostgreSQL vs SQLite) is
 * scripts/bench-queue-backends.ts.
 * Needs initdb/pg_ctl (PostgreSQL) and moto_server (CESAR_TEST_MOTO, as in the contract tests).
 */
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { loopedJfk } from '../contract-tests/support/audio.ts';
import { FIXTURES, tempDir } from '../contract-tests/support/harness.ts';
import { startPostgres } from '../contract-tests/support/postgres.ts';
import { startS3Server } from '../contract-tests/support/s3-server.ts';
import { startServerProcess } from '../contract-tests/support/server-process.ts';
import type { ServerProcess } from '../contract-tests/support/server-process.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    kills: { type: 'string', default: '3' },
    'lease-ms': { type: 'string', default: '10000' },
  },
});
const JOBS = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const KILLS = Number(values.kills);
const LEASE_MS = values['lease-ms'];
const CLIPS = ['jfk.ogg', 'ldc93s1.ogg', 'librispeech-61-70968-0000.ogg', 'librispeech-1272-128104-0000.ogg', 'ljspeech-001-0005.ogg'];

// The contract client (through server-process) registers the test runner's coverage check; a benchmark makes no
// contract claims.
process.env.CESAR_CONTRACT_COVERAGE = '0';

const out = (line: string): void => void process.stdout.write(`${line}\n`);

if (!process.env.CESAR_MODELS_DIR) {
  throw new Error('set CESAR_MODELS_DIR to a directory with tiny.en');
}

const postgres = await startPostgres();
const s3 = await startS3Server();
const started: ServerProcess[] = [];
const dirs: string[] = [];

async function node(role: 'api' | 'worker', env: Record<string, string>): Promise<ServerProcess> {
  const dataDir = await tempDir(`cesar-bench-${role}-`);
  dirs.push(dataDir);
  const server = await startServerProcess(dataDir, { ...env, CESAR_ROLE: role, ...(role === 'worker' && { CESAR_MAX_WORKERS: '1' }) });
  started.push(server);
  return server;
}

async function stopAll(): Promise<void> {
  for (const server of started.splice(0)) {
    server.signal('SIGKILL');
    await server.exited;
  }
}

async function cluster(workerCount: number, extra: Record<string, string> = {}): Promise<{ api: ServerProcess; workers: ServerProcess[]; env: Record<string, string> }> {
  const env = {
    ...s3.env,
    CESAR_DATABASE_URL: await postgres.createDatabase(),
    CESAR_STORAGE_URL: await s3.createBucket(),
    CESAR_SHUTDOWN_GRACE_MS: '0',
    CESAR_LEASE_MS: LEASE_MS,
    CESAR_RETRY_BASE_MS: '1000',
    CESAR_MAX_PENDING_JOBS: '10000',
    ...extra,
  };
  const api = await node('api', env);
  const workers = await Promise.all(Array.from({ length: workerCount }, () => node('worker', env)));
  return { api, workers, env };
}

async function submit(api: ServerProcess, name: string, blob: Blob): Promise<string> {
  const form = new FormData();
  form.append('file', blob, name);
  const response = await api.client.post('/jobs', { body: form });
  if (response.status !== 202) {
    throw new Error(`submit: ${response.status} ${response.text}`);
  }
  return (response.json as { id: string }).id;
}

function completedLine(workers: ServerProcess[], id: string): Promise<{ duration: number }> {
  return Promise.race(workers.map((worker) => worker.waitForLog((line) => line.msg === 'job completed' && line.job_id === id))).then((line) => ({
    duration: Number(line.duration_seconds),
  }));
}

const blobs = await Promise.all(CLIPS.map(async (file) => new Blob([await readFile(path.join(FIXTURES, file))])));

out(`scale-out benchmark: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), tiny.en, ${JOBS} jobs of ${CLIPS.length} real clips in turn, best of ${ROUNDS}`);
out('every node is a process on this machine: 2 worker nodes share the same cores as 1');

try {
  // (a) throughput
  const best = new Map<number, number>();
  for (const workerCount of [1, 2]) {
    for (let round = 1; round <= ROUNDS; round++) {
      const { api, workers } = await cluster(workerCount);
      // Warm-up: one job per worker, at once, so each worker has loaded its model.
      const warm = await Promise.all(workers.map((_, i) => submit(api, CLIPS[0] ?? '', blobs[i % blobs.length] ?? new Blob([]))));
      await Promise.all(warm.map((id) => completedLine(workers, id)));
      const t0 = performance.now();
      const ids = await Promise.all(Array.from({ length: JOBS }, (_, i) => submit(api, CLIPS[i % CLIPS.length] ?? '', blobs[i % blobs.length] ?? new Blob([]))));
      const uploadedMs = performance.now() - t0;
      const done = await Promise.all(ids.map((id) => completedLine(workers, id)));
      const wall = (performance.now() - t0) / 1000;
      const audio = done.reduce((sum, line) => sum + line.duration, 0);
      const perWorker = workers.map((worker) => worker.logs.filter((line) => line.msg === 'job completed').length - 1);
      const rate = audio / wall;
      best.set(workerCount, Math.max(best.get(workerCount) ?? 0, rate));
      out(
        `  ${workerCount} worker node(s), round ${round}: ${JOBS} jobs, ${audio.toFixed(1)} s of audio in ${wall.toFixed(1)} s wall ` +
          `(uploads ${uploadedMs.toFixed(0)} ms) = ${rate.toFixed(2)} audio s / wall s; jobs per worker ${perWorker.join('/')}`,
      );
      await stopAll();
    }
  }
  const one = best.get(1) ?? 0;
  const two = best.get(2) ?? 0;
  out(`throughput (best): 1 worker node ${one.toFixed(2)}, 2 worker nodes ${two.toFixed(2)} audio s / wall s; 2 vs 1: ${(two / one).toFixed(2)}x`);

  // (b) recovery after a SIGKILL
  const long = (await loopedJfk(3)).blob;
  const { api, workers, env } = await cluster(2);
  const recoveries: number[] = [];
  for (let kill = 1; kill <= KILLS; kill++) {
    const id = await submit(api, 'long.ogg', long);
    const victim = await Promise.race(
      workers.map((worker) => worker.waitForLog((line) => line.msg === 'audio normalized; transcribing' && line.job_id === id).then(() => worker)),
    );
    const survivor = workers.find((worker) => worker !== victim);
    if (!survivor) {
      throw new Error('no survivor');
    }
    victim.signal('SIGKILL');
    await victim.exited;
    const killedAt = performance.now();
    await survivor.waitForLog((line) => line.msg === 'job started' && line.job_id === id);
    const ms = performance.now() - killedAt;
    recoveries.push(ms);
    out(`  kill ${kill}: the job started again on the other worker ${(ms / 1000).toFixed(1)} s after the SIGKILL`);
    await completedLine([survivor], id);
    workers.splice(workers.indexOf(victim), 1, await node('worker', env));
    await sleep(500);
  }
  const sorted = [...recoveries].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  out(
    `recovery after SIGKILL (CESAR_LEASE_MS=${LEASE_MS}, heartbeat window ${Math.max(10, Math.ceil(Number(LEASE_MS) / 1000))} s): ` +
      `best ${((sorted[0] ?? 0) / 1000).toFixed(1)} s, median ${(median / 1000).toFixed(1)} s of ${sorted.length}`,
  );
} finally {
  await stopAll();
  await s3.stop();
  await postgres.stop();
  for (const dir of dirs) {
    await rm(dir, { recursive: true, force: true });
  }
}
