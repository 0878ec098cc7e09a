import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { loopedJfk } from '../support/audio.ts';
import { jobForm, requireModel, startServer, waitForJob } from '../support/harness.ts';
import type { JobBody, TestServer } from '../support/harness.ts';
import { manualClock } from '../support/manual-clock.ts';

const run = promisify(execFile);

/** The tinypool worker processes of this test process (the service runs in-process, so they are our children). */
async function workerPids(): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]);
  return stdout
    .split('\n')
    .filter((line) => line.includes('tinypool'))
    .map((line) => Number.parseInt(line.trim(), 10))
    .filter((pid) => Number.isInteger(pid));
}

/**
 * Waits until attempt `attempt` of the job has handed its audio to the worker (the dispatcher logs
 * "audio normalized; transcribing" right before), gives the task a moment to start decoding, then kills the
 * worker process with SIGKILL: to the server this is exactly what a native crash of the engine looks like (a
 * sherpa-onnx failure ends its process), which the engine guards no longer let a request provoke.
 */
async function killWorkerDuring(server: TestServer, id: string, attempt: number): Promise<void> {
  const handedOver = (): number =>
    server.logs.filter((line) => line.includes('"audio normalized; transcribing"') && line.includes(id)).length;
  while (handedOver() < attempt) {
    const job = (await server.client.get(`/jobs/${id}`)).json as JobBody;
    assert.ok(job.status === 'pending' || job.status === 'processing', `job ended ${job.status} before attempt ${attempt} was killed`);
    await sleep(20);
  }
  // The 66 s of speech take seconds to decode; this leaves the task well inside the worker when it dies.
  await sleep(300);
  const pids = await workerPids();
  assert.equal(pids.length, 1, `one worker process, found ${pids.length}`);
  process.kill(pids[0] ?? 0, 'SIGKILL');
}

/** Six plays of jfk.ogg (66 s): long enough that every attempt is still decoding when it is killed. */
const longSpeech = async (): Promise<FormData> => jobForm('long.ogg', {}, (await loopedJfk(6)).blob);

describe('a worker process that dies natively', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_MAX_ATTEMPTS: '3', CESAR_RETRY_BASE_MS: '50' });
  });
  after(() => server.close());

  test('costs only its own job, which ends failed after its attempts instead of looping, while the server keeps serving', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const poison = await client.post('/jobs', { body: await longSpeech() });
    assert.equal(poison.status, 202);
    const poisonId = (poison.json as JobBody).id;
    const good = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    for (const attempt of [1, 2, 3]) {
      await killWorkerDuring(server, poisonId, attempt);
    }

    const failed = await waitForJob(client, poisonId, ['completed', 'failed']);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'worker_crashed');
    assert.equal(failed.attempts, 3, 'each attempt killed its worker; the job stopped at max_attempts');
    assert.equal(failed.next_attempt_at, null);
    const retries = server.logs.filter((line) => line.includes('job attempt failed; will retry') && line.includes(poisonId));
    assert.equal(retries.length, 2);

    assert.equal((await waitForJob(client, good, ['completed', 'failed'])).status, 'completed');
    assert.equal((await client.get('/health')).status, 200);
    // The one worker died three times; the pool started another each time, and it transcribes.
    const after = ((await client.post('/jobs', { body: await jobForm('jfk.ogg') })).json as JobBody).id;
    assert.equal((await waitForJob(client, after, ['completed', 'failed'])).status, 'completed');
    // The job's row says completed a moment before its worker slot is given back; nothing may stay running.
    const deadline = Date.now() + 10_000;
    while (server.service.dispatcher.running > 0 && Date.now() < deadline) {
      await sleep(20);
    }
    assert.equal(server.service.dispatcher.running, 0);
  });
});

describe('a job whose attempt failed, on an injected clock', () => {
  const clock = manualClock();
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '1', CESAR_MAX_ATTEMPTS: '2', CESAR_RETRY_BASE_MS: '60000' }, clock);
  });
  after(() => server.close());

  test('shows its attempts, last error and next try time, and is not tried again before that time', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await longSpeech() })).json as JobBody).id;
    await killWorkerDuring(server, id, 1);
    // The clock stands still: after the crash the job waits, pending, for a retry time that does not come.
    let job = (await client.get(`/jobs/${id}`)).json as JobBody;
    while (!(job.status === 'pending' && job.attempts === 1)) {
      assert.notEqual(job.status, 'failed');
      await sleep(50);
      job = (await client.get(`/jobs/${id}`)).json as JobBody;
    }
    assert.equal(job.error?.code, 'worker_crashed');
    const nextTry = Date.parse(String(job.next_attempt_at));
    const delay = nextTry - clock.now();
    // 60 s base delay, ±25 % jitter.
    assert.ok(delay >= 45_000 && delay <= 75_000, `next try in ${delay} ms`);
    assert.equal(job.completed_at, null);

    assert.equal(await server.service.store.claim('probe', clock.now() + delay - 1, 1000), undefined, 'not claimable before its time');

    clock.advance(delay);
    await killWorkerDuring(server, id, 2);
    const failed = await waitForJob(client, id, ['completed', 'failed']);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.attempts, 2);
    assert.equal(failed.error?.code, 'worker_crashed');
    assert.equal(failed.next_attempt_at, null);
  });
});
