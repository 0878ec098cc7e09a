/**
 * Webhook and event-log benchmark: outbox delivery throughput to a loopback receiver (signing, the URL policy's
 * checked lookup, one attempt recorded per message), the cost of an idle outbox sweep over many settled jobs,
 * and how fast per-segment progress events are logged. Prints numbers; judges nothing.
 *
 *   node scripts/bench-webhooks.ts
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { openDatabase } from '../src/jobs/database.ts';
import type { DispatcherEvents } from '../src/jobs/dispatcher.ts';
import { systemClock } from '../src/clock.ts';
import { createJobEventLog } from '../src/jobs/job-events.ts';
import { createJobStore } from '../src/jobs/job-store.ts';
import { silentLogger } from '../src/logger.ts';
import { createUrlPolicy } from '../src/net/url-policy.ts';
import { createOutbox } from '../src/webhooks/outbox.ts';
import { createWebhookTarget } from '../src/webhooks/webhook-target.ts';
import { createWebhooks } from '../src/webhooks/webhooks.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 500);
const SETTLED = Number(process.env.BENCH_SETTLED ?? 10_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 2000);
const out = (line: string): void => void process.stdout.write(`${line}\n`);

const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-bench-webhooks-'));
const db = await openDatabase(path.join(dir, 'cesar.db'));
const store = createJobStore(db);
const outbox = createOutbox(db);

let received = 0;
let allReceived: () => void = () => undefined;
const done = new Promise<void>((resolve) => {
  allReceived = resolve;
});
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(204).end();
    received += 1;
    if (received === MESSAGES) {
      allReceived();
    }
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const address = receiver.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;

/** A job, by default with a webhook that asks for `completed`. */
const newJob = async (withWebhook = true): Promise<string> => {
  const id = randomUUID();
  const webhook = withWebhook ? { url, events: ['completed' as const] } : null;
  await store.enqueue({ id, model: 'tiny.en', language: null, task: 'transcribe', fileName: 'bench.ogg', inputPath: `uploads/${id}`, maxAttempts: 3, retentionSeconds: 86_400, webhook }, Date.now());
  return id;
};

// Settled jobs: their webhooks are done; an idle sweep must not get slower with them.
for (let i = 0; i < SETTLED; i++) {
  await newJob();
}
await db.write(`UPDATE job_webhooks SET done = 1`);
let started = performance.now();
const sweeps = 200;
for (let i = 0; i < sweeps; i++) {
  await outbox.sweep(Date.now(), () => '{}');
}
out(`idle outbox sweep with ${SETTLED} settled webhooks: ${((performance.now() - started) / sweeps).toFixed(3)} ms per sweep`);

// Delivery: MESSAGES completed jobs owe a message each.
for (let i = 0; i < MESSAGES; i++) {
  await newJob();
}
await db.write(`UPDATE jobs SET status = 'completed', completed_at = ? WHERE status = 'pending'`, [Date.now()]);
const webhooks = createWebhooks({
  db,
  target: createWebhookTarget(createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set([typeof address === 'object' && address ? address.port : 0]) })),
  clock: systemClock,
  logger: silentLogger,
  settings: { defaultUrl: null, secrets: [`whsec_${Buffer.alloc(32, 7).toString('base64')}`], retryBaseMs: 1000, retryMaxMs: 60_000, maxAttempts: 3, timeoutMs: 5000, pollIntervalMs: 20 },
});
started = performance.now();
await webhooks.start(new EventEmitter<DispatcherEvents>());
await done;
const elapsed = performance.now() - started;
await webhooks.stop();
out(`delivered ${MESSAGES} signed messages (queued, claimed, sent, recorded) in ${elapsed.toFixed(0)} ms: ${((MESSAGES * 1000) / elapsed).toFixed(0)} messages/s`);

// Event log: per-segment progress as the dispatcher reports it.
const events = new EventEmitter<DispatcherEvents>();
const log = createJobEventLog(db, systemClock, (error) => {
  throw error;
});
log.start(events);
const jobId = await newJob(false);
let appended = 0;
const logged = new Promise<void>((resolve) => {
  log.appended.on('appended', () => {
    appended += 1;
    if (appended === EVENTS) {
      resolve();
    }
  });
});
started = performance.now();
for (let i = 0; i < EVENTS; i++) {
  events.emit('job:progress', jobId, { type: 'cesar:progress', processedSeconds: i, durationSeconds: EVENTS, segment: { id: i, start: i, end: i + 1, text: ' a segment of speech', words: null }, worker: { pid: process.pid, model: null, rssBytes: 0, peakRssBytes: 0, jobs: 0 } });
}
await logged;
const logMs = performance.now() - started;
out(`logged ${EVENTS} segments (a segment and a progress event each, synchronous=FULL) in ${logMs.toFixed(0)} ms: ${((EVENTS * 1000) / logMs).toFixed(0)} segments/s`);
started = performance.now();
const replay = await log.after(jobId, 0);
out(`replayed ${replay.length} events for a reconnect in ${(performance.now() - started).toFixed(1)} ms`);
log.stop();

await new Promise((resolve) => receiver.close(resolve));
await db.close();
await rm(dir, { recursive: true, force: true });
