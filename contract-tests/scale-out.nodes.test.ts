/**
 * Scale-out as an operator would run it: two API nodes (`--role api`, no models) and two worker nodes (`--role
 * worker`, one transcription each) as real processes, each with its own data directory, sharing one PostgreSQL
 * database and one S3 bucket (moto). Twenty real-speech jobs go round-robin to the API nodes with a signed webhook;
 * one worker is SIGKILLed in the middle of a job. Every job completes exactly once, the killed node's job runs
 * again on the other worker within pg-boss's heartbeat window, an SSE stream on the other API node follows that
 * job to its end, and the receiver gets exactly one `job.completed` delivery per job.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';
import { Webhook } from 'standardwebhooks';

import { loopedJfk, wordErrorRate } from './support/audio.ts';
import { parseEventStream } from './support/contract.ts';
import type { ServerSentEvent } from './support/contract.ts';
import { jobForm, requireModel, tempDir, waitForJob, words } from './support/harness.ts';
import type { JobBody } from './support/harness.ts';
import { requirePostgres, startPostgres } from './support/postgres.ts';
import type { TestPostgres } from './support/postgres.ts';
import { requireMoto, startS3Server } from './support/s3-server.ts';
import type { S3Server } from './support/s3-server.ts';
import { killAndAwaitRerun, startServerProcess } from './support/server-process.ts';
import type { ServerProcess } from './support/server-process.ts';
import { startWebhookReceiver } from './support/webhook-receiver.ts';
import type { WebhookReceiver } from './support/webhook-receiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';

/** Real speech with its reference transcript (contract-tests/fixtures/README.md). */
const CLIPS: { file: string; text: string }[] = [
  { file: 'jfk.ogg', text: JFK },
  { file: 'ldc93s1.ogg', text: 'she had your dark suit in greasy wash water all year' },
  { file: 'librispeech-61-70968-0000.ogg', text: 'he began a confused complaint against the wizard who had vanished behind the curtain on the left' },
  { file: 'librispeech-1272-128104-0000.ogg', text: 'mister quilter is the apostle of the middle classes and we are glad to welcome his gospel' },
  {
    file: 'ljspeech-001-0005.ogg',
    text: 'the invention of movable metal letters in the middle of the fifteenth century may justly be considered as the invention of the art of printing',
  },
];

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('scale-out: two API nodes and two worker nodes on one PostgreSQL and one bucket', () => {
  let postgres: TestPostgres | null = null;
  let s3: S3Server | null = null;
  let hooks: WebhookReceiver | null = null;
  const processes: ServerProcess[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const server of processes) {
      server.signal('SIGKILL');
      await server.exited;
    }
    await hooks?.close();
    await s3?.stop();
    await postgres?.stop();
    for (const dir of dirs) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('20 jobs through 2 API and 2 worker nodes, one worker SIGKILLed mid-job: each job completes once, its webhook arrives once, SSE follows across nodes', async (t) => {
    if (!(await requirePostgres(t)) || !requireMoto(t) || !requireModel(t)) {
      return;
    }
    const startedAt = Date.now();
    postgres = await startPostgres();
    s3 = await startS3Server();
    hooks = await startWebhookReceiver();
    const databaseUrl = await postgres.createDatabase();
    const storageUrl = await s3.createBucket();
    const shared = {
      ...s3.env,
      CESAR_DATABASE_URL: databaseUrl,
      CESAR_STORAGE_URL: storageUrl,
      CESAR_WEBHOOK_SECRETS: SECRET,
      CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true',
      CESAR_URL_ALLOWED_PORTS: '1-65535',
      CESAR_MAX_ATTEMPTS: '5',
      CESAR_RETRY_BASE_MS: '1000',
      CESAR_SHUTDOWN_GRACE_MS: '0',
    };
    const start = async (role: 'api' | 'worker'): Promise<ServerProcess> => {
      const dataDir = await tempDir(`cesar-${role}-`);
      dirs.push(dataDir);
      const env: Record<string, string> = { ...shared, CESAR_ROLE: role };
      if (role === 'api') {
        // Models only on the workers.
        const noModels = await tempDir('cesar-no-models-');
        dirs.push(noModels);
        env.CESAR_MODELS_DIR = noModels;
      } else {
        env.CESAR_MAX_WORKERS = '1';
      }
      const server = await startServerProcess(dataDir, env);
      processes.push(server);
      return server;
    };
    const apis = await Promise.all([start('api'), start('api')]);
    const workers = await Promise.all([start('worker'), start('worker')]);
    const [apiA, apiB] = apis;

    // Job 6 of 20 is long (33 s of speech): the one a worker is killed in; the others are short clips, so both
    // workers have run some before the kill and the survivor has some left after it.
    const expected = new Map<string, string[]>();
    const LONG_AT = 5;
    let longId = '';
    let stream: Promise<ServerSentEvent[]> | null = null;
    const longBlob = (await loopedJfk(3)).blob;
    for (let i = 0; i < 20; i++) {
      const api = i % 2 === 0 ? apiA : apiB;
      if (i === LONG_AT) {
        const long = await api.client.post('/jobs', { body: await jobForm('long.ogg', { webhook_url: hooks.url }, longBlob) });
        assert.equal(long.status, 202, long.text);
        longId = (long.json as JobBody).id;
        expected.set(longId, Array.from({ length: 3 }, () => JFK.split(' ')).flat());
        // SSE on the other API node, opened before a worker has the job: it follows it through the kill to its end.
        const other = i % 2 === 0 ? apiB : apiA;
        stream = fetch(`${other.client.baseUrl}/jobs/${longId}/events`).then(async (response) => {
          assert.equal(response.status, 200);
          return parseEventStream(await response.text());
        });
        // Read at the end; a failure before then (the stream cut by the clean-up) is not a second error.
        stream.catch(() => undefined);
        continue;
      }
      const clip = CLIPS[i % CLIPS.length] ?? CLIPS[0];
      assert.ok(clip);
      const submitted = await api.client.post('/jobs', { body: await jobForm(clip.file, { webhook_url: hooks.url }) });
      assert.equal(submitted.status, 202, submitted.text);
      expected.set((submitted.json as JobBody).id, clip.text.split(' '));
    }
    assert.ok(stream);

    // Kill whichever worker is transcribing the long job.
    const transcribing = (server: ServerProcess): Promise<ServerProcess> =>
      server.waitForLog((line) => line.msg === 'audio normalized; transcribing' && line.job_id === longId).then(() => server);
    const victim = await Promise.race(workers.map(transcribing));
    const survivor = workers.find((worker) => worker !== victim);
    assert.ok(survivor);
    const recoveredMs = await killAndAwaitRerun(victim, survivor, longId);
    t.diagnostic(`the killed worker's job started again on the other worker ${recoveredMs} ms after the kill`);
    // pg-boss's heartbeat window (10 s) + its monitor (1 s) + the retry's backoff (1 s base, jittered), and the
    // survivor first finishes the short job it has (the long job is older than those left); 30 s on a loaded machine.
    assert.ok(recoveredMs < 30_000, `recovered after ${recoveredMs} ms`);

    // The jobs the victim had started and not finished: the long one, and perhaps the next one, which a worker
    // claims and prepares while its last decode finishes (the dispatcher's `finishing` look-ahead).
    const interrupted = new Set(victim.logs.filter((line) => line.msg === 'job started').map((line) => String(line.job_id)));
    for (const line of victim.logs) {
      if (line.msg === 'job completed') {
        interrupted.delete(String(line.job_id));
      }
    }
    assert.ok(interrupted.has(longId));
    t.diagnostic(`jobs interrupted by the kill: ${interrupted.size}`);

    // Every job completes, exactly once, with its words.
    for (const [id, reference] of expected) {
      const done = await waitForJob(apiA.client, id, ['completed', 'failed', 'canceled'], 180_000);
      assert.equal(done.status, 'completed', `${id}: ${JSON.stringify(done.error)}`);
      assert.equal(
        done.attempts,
        interrupted.has(id) ? 2 : 1,
        `${id} attempts: ${JSON.stringify(processes.flatMap((server, n) => server.logs.filter((line) => line.job_id === id).map((line) => ({ n, ...line }))))}`,
      );
      const text = (await apiB.client.get(`/jobs/${id}/result`)).text;
      const { errors } = wordErrorRate(reference, words(text));
      if (id === longId) {
        assert.deepEqual(words(text), reference);
      }
      assert.ok(errors / reference.length <= 0.15, `${id}: ${errors} word errors in "${text}"`);
    }
    const completions = await query<{ job_id: string; n: number }>(
      databaseUrl,
      `SELECT job_id, COUNT(*)::int AS n FROM job_events WHERE type = 'status' AND data::json->>'status' = 'completed' GROUP BY job_id`,
    );
    assert.equal(completions.length, 20, 'a completed status for every job');
    assert.ok(
      completions.every((row) => row.n === 1),
      'one completed status each',
    );
    const transcripts = await query<{ job_id: string; n: number }>(databaseUrl, 'SELECT job_id, COUNT(*)::int AS n FROM transcripts GROUP BY job_id');
    assert.equal(transcripts.length, 20);
    assert.ok(
      transcripts.every((row) => row.n === 1),
      'one transcript each',
    );
    const ranBy = (server: ServerProcess): number => new Set(server.logs.filter((line) => line.msg === 'job completed').map((line) => line.job_id)).size;
    t.diagnostic(`jobs completed by the killed worker: ${ranBy(victim)}, by the survivor: ${ranBy(survivor)}`);
    assert.equal(ranBy(victim) + ranBy(survivor), 20);
    assert.ok(
      survivor.logs.some((line) => line.msg === 'job completed' && line.job_id === longId),
      'the survivor completed the long job',
    );
    for (const id of interrupted) {
      assert.ok(
        survivor.logs.some((line) => line.msg === 'job completed' && line.job_id === id),
        `the survivor completed ${id}`,
      );
    }
    for (const api of apis) {
      assert.ok(!api.logs.some((line) => line.msg === 'job started'), 'API nodes run no job');
    }

    // The SSE stream on API node B: statuses and progress written by the workers, ending with `completed`.
    const events = await stream;
    const statuses = events.filter((event) => event.event === 'status').map((event) => (JSON.parse(event.data) as { status: string }).status);
    assert.equal(events.at(-1)?.event, 'status');
    assert.equal(statuses.at(-1), 'completed');
    assert.equal(statuses.filter((status) => status === 'completed').length, 1);
    const lastProcessing = events.findLastIndex((event) => event.event === 'status' && (JSON.parse(event.data) as { status: string }).status === 'processing');
    assert.ok(lastProcessing >= 0, `statuses: ${statuses.join(',')}`);
    const survivorProgress = events.slice(lastProcessing).filter((event) => event.event === 'progress');
    assert.ok(survivorProgress.length >= 1, "progress from the survivor's run reaches the stream on the other API node");
    const ids = events.map((event) => Number(event.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'event ids increase');

    // Webhooks: one signed `job.completed` per job, no webhook-id twice.
    const deadline = Date.now() + 30_000;
    while (hooks.received.length < 20 && Date.now() < deadline) {
      await sleep(100);
    }
    await sleep(2000); // room for a duplicate to show up
    const verifier = new Webhook(SECRET);
    const messages = hooks.received.map((delivery) => verifier.verify(delivery.body, delivery.headers) as { type: string; data: { id: string } });
    assert.equal(hooks.received.length, 20, `deliveries: ${hooks.received.length}`);
    assert.equal(new Set(hooks.received.map((delivery) => delivery.headers['webhook-id'])).size, 20, 'no webhook-id twice');
    assert.ok(
      messages.every((message) => message.type === 'job.completed'),
      'only completed messages',
    );
    assert.deepEqual(new Set(messages.map((message) => message.data.id)), new Set(expected.keys()), 'one per job');
    t.diagnostic(`whole run ${Date.now() - startedAt} ms`);
  });
});
