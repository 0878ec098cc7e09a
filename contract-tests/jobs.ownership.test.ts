/**
 * Keys own their jobs (issue 13): with several API keys configured, a job belongs to the key that created it.
 * Every operation on it answers another key 404, as if it did not exist; an admin key sees every job.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { loadSpec } from '../src/http/app.ts';
import { jobForm, requireModel, startServer, waitForJob } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

const ALICE = `ck_alice_${randomUUID().replaceAll('-', '')}`;
const BOB = `ck_bob_${randomUUID().replaceAll('-', '')}`;
const ADMIN = `ck_admin_${randomUUID().replaceAll('-', '')}`;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** Every operation of the spec on one job: its method and path with the job's id filled in. */
function jobOperations(id: string, deliveryId: string): { operationId: string; method: string; path: string }[] {
  const spec = loadSpec() as { paths: Record<string, Record<string, { operationId?: string }>> };
  const found: { operationId: string; method: string; path: string }[] = [];
  for (const [template, item] of Object.entries(spec.paths)) {
    if (!template.includes('{id}')) {
      continue;
    }
    for (const [method, operation] of Object.entries(item)) {
      if (typeof operation === 'object' && operation.operationId) {
        found.push({ operationId: operation.operationId, method: method.toUpperCase(), path: template.replace('{id}', id).replace('{delivery_id}', deliveryId) });
      }
    }
  }
  return found;
}

describe('keys own their jobs', () => {
  let server: TestServer;
  const as = (key: string): { headers: Record<string, string> } => ({ headers: { 'X-API-Key': key } });
  before(async () => {
    server = await startServer({
      CESAR_API_KEYS: `${ALICE},${BOB}`,
      CESAR_ADMIN_API_KEYS: ADMIN,
      CESAR_WEBHOOK_SECRETS: SECRET,
      CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true',
      CESAR_URL_ALLOWED_PORTS: '1-65535',
      CESAR_WEBHOOK_MAX_ATTEMPTS: '1',
    });
  });
  after(() => server.close());

  test('another key gets 404 on every operation of a job; its owner and an admin key do not', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    // A webhook to a closed port: the job gets a delivery (that fails), so the delivery operations have an id.
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { webhook_url: 'http://127.0.0.1:9/hook' }), ...as(ALICE) });
    assert.equal(created.status, 202, created.text);
    const id = (created.json as JobBody).id;
    const finished = await (async () => {
      for (;;) {
        const response = await server.client.get(`/jobs/${id}`, as(ALICE));
        const body = response.json as JobBody & { webhook: { last_delivery: { id: string; status: string } | null } | null };
        if (body.status === 'completed' && body.webhook?.last_delivery && body.webhook.last_delivery.status !== 'pending' && body.webhook.last_delivery.status !== 'delivering') {
          return body;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const deliveryId = finished.webhook?.last_delivery?.id ?? '';
    assert.ok(deliveryId);

    const operations = jobOperations(id, deliveryId);
    assert.deepEqual(
      operations.map((operation) => operation.operationId).sort(),
      [
        'cancelJob', 'deleteJob', 'getJob', 'getJobEvents', 'getJobResult', 'getTranscript', 'getTranscriptSrt', 'getTranscriptText',
        'getTranscriptVtt', 'getVerboseTranscript', 'listJobDeliveries', 'redeliverJobWebhook',
      ],
    );
    for (const { method, path } of operations) {
      const response = await server.client.request(method, path, as(BOB));
      assert.equal(response.status, 404, `${method} ${path} as another key: ${response.text}`);
      assert.equal((response.json as { code: string }).code, 'job_not_found');
      assert.equal(response.text.includes(ALICE), false);
      const head = method === 'GET' ? await fetch(new URL(path, server.client.baseUrl), { method: 'HEAD', ...as(BOB) }) : null;
      assert.ok(head === null || head.status === 404, `HEAD ${path} as another key`);
    }
    // The 404 is the same as for an id nobody has.
    const unknown = await server.client.get(`/jobs/${randomUUID()}`, as(BOB));
    const hidden = await server.client.get(`/jobs/${id}`, as(BOB));
    assert.equal(hidden.text.replaceAll(id, 'ID'), unknown.text.replace(/[0-9a-f-]{36}/g, 'ID'));

    const listed = async (key: string): Promise<string[]> => ((await server.client.get('/jobs?limit=100', as(key))).json as { jobs: JobBody[] }).jobs.map((job) => job.id);
    assert.ok(!(await listed(BOB)).includes(id), 'another key does not list it');
    assert.ok(!(await listed(BOB)).includes(id));
    assert.ok((await listed(ALICE)).includes(id), 'its owner lists it');
    assert.ok((await listed(ADMIN)).includes(id), 'an admin key lists it');
    const bobs = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), ...as(BOB) });
    const bobId = (bobs.json as JobBody).id;
    assert.deepEqual((await listed(BOB)), [bobId], 'a key lists only its own jobs');
    assert.ok(!(await listed(ALICE)).includes(bobId));
    assert.deepEqual((await listed(ADMIN)).slice(0, 2), [bobId, id]);
    // Paging by cursor stays within the key's own jobs.
    const page = (await server.client.get('/jobs?limit=1', as(ALICE))).json as { jobs: JobBody[]; next_cursor: string | null };
    assert.deepEqual(page.jobs.map((job) => job.id), [id]);

    // Owner and admin: every read works.
    for (const key of [ALICE, ADMIN]) {
      assert.equal((await server.client.get(`/jobs/${id}`, as(key))).status, 200);
      assert.equal((await server.client.get(`/jobs/${id}/result`, as(key))).status, 200);
      assert.equal((await server.client.get(`/jobs/${id}/events`, as(key))).status, 200);
      assert.equal((await server.client.get(`/jobs/${id}/deliveries`, as(key))).status, 200);
    }
    assert.equal((await server.client.post(`/jobs/${id}/deliveries/${deliveryId}/redeliver`, as(ADMIN))).status, 202);
    // Bob's refused delete left Alice's job in place; an admin may delete it.
    assert.equal((await server.client.get(`/jobs/${id}`, as(ALICE))).status, 200);
    assert.equal((await server.client.delete(`/jobs/${id}`, as(ADMIN))).status, 204);
    assert.equal((await server.client.get(`/jobs/${id}`, as(ALICE))).status, 404);
    await waitForJob({ ...server.client, get: (path: string) => server.client.get(path, as(BOB)) }, bobId, ['completed']);
  });

  test('cancel: another key cannot cancel a pending job; its owner can', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), ...as(ALICE) });
    const id = (created.json as JobBody).id;
    const refused = await server.client.post(`/jobs/${id}/cancel`, as(BOB));
    assert.equal(refused.status, 404);
    const mine = await server.client.post(`/jobs/${id}/cancel`, as(ALICE));
    assert.ok(mine.status === 200 || mine.status === 409, mine.text);
  });

  test('an Idempotency-Key reused by another key makes that key its own job, never answers with the first one', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = randomUUID();
    const first = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'X-API-Key': ALICE, 'Idempotency-Key': key } });
    const second = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'X-API-Key': BOB, 'Idempotency-Key': key } });
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    const aliceJob = (first.json as JobBody).id;
    const bobJob = (second.json as JobBody).id;
    assert.notEqual(aliceJob, bobJob);
    assert.equal((await server.client.get(`/jobs/${bobJob}`, as(BOB))).status, 200);
    assert.equal((await server.client.get(`/jobs/${aliceJob}`, as(BOB))).status, 404);
  });

  test('an admin key is refused where a wrong key is: the admin list is separate but still a key', async () => {
    assert.equal((await server.client.get('/jobs', as(`${ADMIN}x`))).status, 401);
    assert.equal((await server.client.get('/jobs', as(ADMIN))).status, 200);
  });
});

describe('keys off: every client sees every job', () => {
  test('without CESAR_API_KEYS the jobs are shared, as before', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer();
    try {
      const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'X-API-Key': 'ignored-when-keys-are-off' } });
      const id = (created.json as JobBody).id;
      assert.equal((await server.client.get(`/jobs/${id}`)).status, 200);
      assert.ok(((await server.client.get('/jobs')).json as { jobs: JobBody[] }).jobs.some((job) => job.id === id));
      assert.equal((await server.client.delete(`/jobs/${id}`)).status, 204);
    } finally {
      await server.close();
    }
  });
});
