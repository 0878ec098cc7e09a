import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Webhook } from 'standardwebhooks';

import { retryAfterMs, webhookRetryDelayMs } from '../src/webhooks/deliverer.ts';
import { signatureHeader } from '../src/webhooks/signature.ts';
import { jobForm, requireModel, startServer, tempDir } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';
import { startWebhookReceiver } from './support/webhook-receiver.ts';
import type { WebhookReceiver } from './support/webhook-receiver.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const NEXT_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(50);
  }
}

const WEBHOOK_ENV = {
  CESAR_WEBHOOK_SECRETS: `${SECRET},${NEXT_SECRET}`,
  CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true',
  CESAR_URL_ALLOWED_PORTS: '1-65535',
  CESAR_WEBHOOK_RETRY_BASE_MS: '150',
};

describe('webhook signatures', () => {
  test('the published Standard Webhooks example vector verifies, signed by us and by the library', () => {
    // From the Standard Webhooks reference libraries' test vectors.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
    const timestamp = 1614265330;
    const body = '{"test": 2432232314}';
    const expected = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
    assert.equal(signatureHeader([secret], id, timestamp, body), expected);
    assert.equal(new Webhook(secret).sign(id, new Date(timestamp * 1000), body), expected);
  });
});

describe('webhook retry schedule', () => {
  test('the delay grows fourfold from the base, is capped, and jitters by at most a quarter', () => {
    const base = 5000;
    const max = 6 * 3_600_000;
    const middle = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => webhookRetryDelayMs(attempt, base, max, () => 0.5));
    assert.deepEqual(middle, [5000, 20_000, 80_000, 320_000, 1_280_000, 5_120_000, 20_480_000, max]);
    assert.equal(webhookRetryDelayMs(2, base, max, () => 0), 15_000);
    assert.equal(webhookRetryDelayMs(2, base, max, () => 1), 25_000);
    // The defaults (12 attempts) spread the retries over more than a day.
    const total = Array.from({ length: 11 }, (_, i) => webhookRetryDelayMs(i + 1, base, max, () => 0.5)).reduce((a, b) => a + b, 0);
    assert.ok(total > 24 * 3_600_000, `${total} ms`);
  });

  test('Retry-After is read as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterMs('120', now), 120_000);
    assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:01:00 GMT', now), 60_000);
    assert.equal(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
    assert.equal(retryAfterMs('soon', now), null);
    assert.equal(retryAfterMs(null, now), null);
  });
});

describe('webhooks', () => {
  let hooks: WebhookReceiver;
  let server: TestServer | null = null;
  const dataDir = tempDir('cesar-webhooks-');
  before(async () => {
    hooks = await startWebhookReceiver([500, 500, 500, 200]);
  });
  after(async () => {
    await server?.close();
    await hooks.close();
    await rm(await dataDir, { recursive: true, force: true });
  });

  test('a receiver that answers 500 three times then 200 gets one successful delivery with one webhook-id, across a restart', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const dir = await dataDir;
    server = await startServer({ ...WEBHOOK_ENV, CESAR_DATA_DIR: dir });
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: hooks.url }) });
    assert.equal(created.status, 202);
    const job = created.json as JobBody & { webhook: { url: string; events: string[]; last_delivery: unknown } };
    assert.deepEqual(job.webhook, { url: hooks.url, events: ['completed', 'failed', 'canceled'], last_delivery: null });

    // Two failed attempts recorded, then the server restarts on the same data directory.
    await until('two recorded attempts', async () => {
      const response = await server?.client.get(`/jobs/${job.id}/deliveries`);
      const list = (response?.json as { deliveries: { attempts: number }[] }).deliveries;
      return (list[0]?.attempts ?? 0) >= 2 ? true : undefined;
    });
    await server.close();
    server = await startServer({ ...WEBHOOK_ENV, CESAR_DATA_DIR: dir });
    await until('a successful attempt', () => (hooks.received.some((r) => r.answered === 200) ? true : undefined));
    const deliveries = await until('the delivery to be recorded as succeeded', async () => {
      const response = await server?.client.get(`/jobs/${job.id}/deliveries`);
      const list = (response?.json as { deliveries: { id: string; status: string; attempts: number; attempt_log: { status_code: number }[] }[] }).deliveries;
      return list[0]?.status === 'succeeded' ? list : undefined;
    });

    assert.equal(hooks.received.length, 4, 'exactly four requests: three 500s and one 200');
    assert.deepEqual(hooks.received.map((r) => r.answered), [500, 500, 500, 200]);
    const ids = new Set(hooks.received.map((r) => r.headers['webhook-id']));
    assert.equal(ids.size, 1, 'the same webhook-id on every attempt');
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]?.id, [...ids][0]);
    assert.deepEqual(deliveries[0]?.attempt_log.map((a) => a.status_code), [500, 500, 500, 200]);

    // Every attempt verifies with the reference library under either active secret.
    for (const request of hooks.received) {
      for (const secret of [SECRET, NEXT_SECRET]) {
        const payload = new Webhook(secret).verify(request.body, request.headers) as { type: string; data: JobBody };
        assert.equal(payload.type, 'job.completed');
        assert.equal(payload.data.id, job.id);
        assert.equal(payload.data.status, 'completed');
      }
    }

    const shown = await server.client.get(`/jobs/${job.id}`);
    const lastDelivery = (shown.json as { webhook: { last_delivery: { status: string; attempts: number; last_status_code: number } } }).webhook.last_delivery;
    assert.equal(lastDelivery.status, 'succeeded');
    assert.equal(lastDelivery.attempts, 4);
    assert.equal(lastDelivery.last_status_code, 200);

    // Tampered bodies or ids, old or future timestamps and other secrets all fail verification.
    const sample = hooks.received[3];
    assert.ok(sample);
    const verifier = new Webhook(SECRET);
    assert.throws(() => verifier.verify(sample.body.replace('completed', 'failed'), sample.headers));
    assert.throws(() => verifier.verify(sample.body, { ...sample.headers, 'webhook-id': 'msg_other' }));
    assert.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(sample.body, sample.headers));
    for (const skewSeconds of [-301, 301]) {
      const timestamp = Math.floor(Date.now() / 1000) + skewSeconds;
      const headers = {
        'webhook-id': sample.headers['webhook-id'] ?? '',
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader([SECRET], sample.headers['webhook-id'] ?? '', timestamp, sample.body),
      };
      assert.throws(() => verifier.verify(sample.body, headers), `a timestamp ${skewSeconds} s off is refused`);
    }

    // A redelivery sends the same message again, with the same webhook-id.
    const redelivered = await server.client.post(`/jobs/${job.id}/deliveries/${deliveries[0]?.id}/redeliver`);
    assert.equal(redelivered.status, 202);
    await until('the redelivery', () => (hooks.received.length >= 5 ? true : undefined));
    assert.equal(hooks.received[4]?.headers['webhook-id'], deliveries[0]?.id);

    // No secret in any log line.
    const logs = server.logs.join('\n');
    for (const secret of [SECRET, NEXT_SECRET]) {
      assert.ok(!logs.includes(secret.slice(6, 26)));
    }
  });

  test('a URL answering 410 Gone is disabled, and an unknown delivery or job is 404', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const gone = await startWebhookReceiver([410]);
    const local = await startServer(WEBHOOK_ENV);
    try {
      const created = await local.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: gone.url, webhook_events: 'processing,completed' }) });
      assert.equal(created.status, 202);
      const id = (created.json as JobBody).id;
      const deliveries = await until('both messages to settle', async () => {
        const list = ((await local.client.get(`/jobs/${id}/deliveries`)).json as { deliveries: { event: string; status: string }[] }).deliveries;
        return list.length === 2 && list.every((d) => d.status === 'disabled') ? list : undefined;
      });
      assert.deepEqual(deliveries.map((d) => d.event), ['processing', 'completed']);
      assert.equal(gone.received.length, 1, 'nothing more is sent to a URL that answered 410');

      const unknownDelivery = await local.client.post(`/jobs/${id}/deliveries/msg_0000000000000000/redeliver`);
      assert.equal(unknownDelivery.status, 404);
      assert.equal((unknownDelivery.json as { code: string }).code, 'delivery_not_found');
      assert.equal((await local.client.post(`/jobs/${randomUUID()}/deliveries/msg_00/redeliver`)).status, 404);
      assert.equal((await local.client.get(`/jobs/${randomUUID()}/deliveries`)).status, 404);
      assert.equal((await local.client.get('/jobs/not-a-uuid/deliveries')).status, 400);
      assert.equal((await local.client.post(`/jobs/${id}/deliveries/not-an-id/redeliver`)).status, 400);
    } finally {
      await local.close();
      await gone.close();
    }
  });

  test('408 and 429 are retried, Retry-After is honoured, and another 4xx stops the retries', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const flaky = await startWebhookReceiver([408, { status: 429, headers: { 'Retry-After': '2' } }, 200]);
    const refusing = await startWebhookReceiver([400]);
    const local = await startServer(WEBHOOK_ENV);
    try {
      const ids: string[] = [];
      for (const url of [flaky.url, refusing.url]) {
        const created = await local.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: url }) });
        ids.push((created.json as JobBody).id);
      }
      type Listed = { status: string; attempts: number; next_attempt_at: string | null; attempt_log: { started_at: string; status_code: number | null }[] };
      const deliveriesOf = async (id: string | undefined): Promise<Listed[]> =>
        ((await local.client.get(`/jobs/${id}/deliveries`)).json as { deliveries: Listed[] }).deliveries;

      // After the 429 the next attempt waits at least the 2 s asked for, far more than the 150 ms backoff.
      const waiting = await until('the 429 to be recorded', async () => {
        const message = (await deliveriesOf(ids[0]))[0];
        return message?.attempts === 2 && message.status === 'pending' ? message : undefined;
      });
      const asked = Date.parse(waiting.next_attempt_at ?? '') - Date.parse(waiting.attempt_log[1]?.started_at ?? '');
      assert.ok(asked >= 2000, `next attempt ${asked} ms after the 429`);
      const delivered = await until('the delivery to succeed', async () => {
        const message = (await deliveriesOf(ids[0]))[0];
        return message?.status === 'succeeded' ? message : undefined;
      });
      assert.deepEqual(delivered.attempt_log.map((a) => a.status_code), [408, 429, 200]);

      const stopped = await until('the 400 to be recorded', async () => {
        const message = (await deliveriesOf(ids[1]))[0];
        return message && message.attempts >= 1 && message.status !== 'delivering' ? message : undefined;
      });
      assert.equal(stopped.status, 'failed');
      assert.equal(stopped.attempts, 1);
      assert.equal(stopped.next_attempt_at, null);
      assert.equal(refusing.received.length, 1);
    } finally {
      await local.close();
      await flaky.close();
      await refusing.close();
    }
  });

  test('a job submitted without webhook_url posts to the server-wide default URL', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const fallback = await startWebhookReceiver([204]);
    const local = await startServer({ ...WEBHOOK_ENV, CESAR_WEBHOOK_URL: fallback.url });
    try {
      const created = await local.client.post('/jobs', { body: await jobForm('jfk.ogg') });
      const job = created.json as JobBody & { webhook: { url: string } };
      assert.equal(job.webhook.url, fallback.url);
      const request = await until('the delivery', () => fallback.received[0]);
      const payload = new Webhook(SECRET).verify(request.body, request.headers) as { type: string; data: JobBody };
      assert.equal(payload.type, 'job.completed');
      assert.equal(payload.data.id, job.id);
    } finally {
      await local.close();
      await fallback.close();
    }
  });

  test('the URL is checked again at delivery: a target the policy no longer allows gets nothing', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const target = await startWebhookReceiver([200]);
    const dir = await tempDir('cesar-webhooks-recheck-');
    let local = await startServer({ ...WEBHOOK_ENV, CESAR_DATA_DIR: dir });
    try {
      const created = await local.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: target.url }) });
      assert.equal(created.status, 202);
      const id = (created.json as JobBody).id;
      // Restarted before the job ends, now without the operator's permission for private addresses.
      await local.close();
      local = await startServer({ ...WEBHOOK_ENV, CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'false', CESAR_DATA_DIR: dir });
      const delivery = await until('the delivery to be settled', async () => {
        const list = ((await local.client.get(`/jobs/${id}/deliveries`)).json as { deliveries: { status: string; attempts: number; attempt_log: { error: string | null }[] }[] }).deliveries;
        return list[0] && list[0].status !== 'pending' && list[0].status !== 'delivering' ? list[0] : undefined;
      });
      assert.equal(delivery.status, 'failed', 'a refused URL is not retried');
      assert.equal(delivery.attempts, 1);
      assert.ok(delivery.attempt_log[0]?.error, 'the attempt says why');
      assert.equal(target.received.length, 0, 'no connection reached the receiver');
    } finally {
      await local.close();
      await target.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a webhook URL the policy refuses, or one on a server without a secret, is refused at submission', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const strict = await startServer({ CESAR_WEBHOOK_SECRETS: SECRET });
    const unsigned = await startServer();
    try {
      for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://127.0.0.1:9/hook', 'http://localhost/hook', 'ftp://example.com/hook']) {
        const refused = await strict.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: url }) });
        assert.equal(refused.status === 400 ? 'invalid_request' : (refused.json as { code: string }).code, refused.status === 400 ? 'invalid_request' : 'webhook_url_not_allowed', url);
      }
      const noSecret = await unsigned.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: 'https://example.com/hook' }) });
      assert.equal(noSecret.status, 422);
      assert.equal((noSecret.json as { code: string }).code, 'webhooks_not_configured');
      assert.equal(((await strict.client.get('/jobs')).json as { jobs: unknown[] }).jobs.length, 0, 'no job was made');
    } finally {
      await strict.close();
      await unsigned.close();
    }
  });
});
