import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { ConfigError, loadConfig } from '../src/config.ts';
import { loadSpec } from '../src/http/app.ts';
import { storedUploads } from './support/backends.ts';
import { jobForm, requireModel, startServer } from './support/harness.ts';
import type { TestServer } from './support/harness.ts';

const KEY = `ck_${randomUUID().replaceAll('-', '')}`;
const OTHER_KEY = `ck_${randomUUID().replaceAll('-', '')}`;
const HASHED_ONLY_KEY = `ck_${randomUUID().replaceAll('-', '')}`;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Every operation of the spec with a concrete path to call it on, and whether the spec opens it to all. */
function operations(): { operationId: string; method: string; path: string; open: boolean }[] {
  const spec = loadSpec() as { paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>> };
  const found: { operationId: string; method: string; path: string; open: boolean }[] = [];
  for (const [template, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (typeof operation === 'object' && operation.operationId) {
        const concrete = template.replace('{id}', randomUUID()).replace('{delivery_id}', 'msg_0123456789abcdef');
        const open = Array.isArray(operation.security) && operation.security.length === 0;
        found.push({ operationId: operation.operationId, method: method.toUpperCase(), path: concrete, open });
      }
    }
  }
  return found;
}

describe('API keys', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_API_KEYS: `${KEY}, sha256:${sha256(HASHED_ONLY_KEY)}` });
  });
  after(() => server.close());

  test('with keys configured, no operation but health is reachable without a valid key', async () => {
    const all = operations();
    assert.ok(all.length >= 10, 'the spec lists the operations');
    assert.deepEqual(all.filter((operation) => operation.open).map((operation) => operation.operationId).sort(), ['getHealth', 'getLiveness']);
    for (const headers of [{}, { 'X-API-Key': OTHER_KEY }, { 'X-API-Key': '' }]) {
      for (const { method, path: target, open } of all) {
        const body = method === 'POST' && target === '/jobs' ? await jobForm('jfk.ogg') : undefined;
        const response = await server.client.request(method, target, { headers, ...(body ? { body } : {}) });
        if (open) {
          assert.ok(response.status === 200 || response.status === 503, `${target} answers without a key (${response.status})`);
          continue;
        }
        assert.equal(response.status, 401, `${method} ${target} without a valid key`);
        if (target.startsWith('/v1/')) {
          // The OpenAI-compatible operations answer in OpenAI's error shape.
          assert.equal((response.json as { error: { code: string } }).error.code, 'invalid_api_key');
        } else {
          assert.equal((response.json as { code: string }).code, 'unauthorized');
        }
      }
    }
    // The refused upload was never stored.
    assert.deepEqual(await storedUploads(server.dataDir), []);
  });

  test('with keys configured, the served spec and docs declare the key, and the spec is the file as written', async () => {
    const served = (await (await fetch(`${server.client.baseUrl}/openapi.json`)).json()) as { security?: unknown };
    assert.deepEqual(served, loadSpec());
    assert.deepEqual(served.security, [{ ApiKey: [] }]);
    assert.match(await (await fetch(`${server.client.baseUrl}/docs/swagger-ui-init.js`)).text(), /"ApiKey"/);
  });

  test('a plain key and a key configured by its SHA-256 are both accepted', async () => {
    for (const key of [KEY, HASHED_ONLY_KEY]) {
      const response = await server.client.get('/jobs', { headers: { 'X-API-Key': key } });
      assert.equal(response.status, 200);
    }
    const deliveries = await server.client.get(`/jobs/${randomUUID()}/deliveries`, { headers: { 'X-API-Key': KEY } });
    assert.equal(deliveries.status, 404, 'past the key check, the operation runs');
  });

  test('an Idempotency-Key belongs to the API key that used it', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const idempotencyKey = randomUUID();
    const jobs: string[] = [];
    for (const key of [KEY, HASHED_ONLY_KEY, KEY]) {
      const response = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'X-API-Key': key, 'Idempotency-Key': idempotencyKey } });
      assert.equal(response.status, 202);
      jobs.push((response.json as { id: string }).id);
    }
    assert.notEqual(jobs[0], jobs[1], 'two callers with one idempotency key make two jobs');
    assert.equal(jobs[2], jobs[0], 'the first caller gets its own job again');
  });

  test('a malformed key or webhook secret stops start-up without echoing the value', () => {
    const short = 'tooshort';
    assert.throws(() => loadConfig({ CESAR_API_KEYS: short }, process.cwd()), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.variable, 'CESAR_API_KEYS');
      assert.ok(!error.message.includes(short));
      return true;
    });
    const weak = 'whsec_c2hvcnQ=';
    assert.throws(() => loadConfig({ CESAR_WEBHOOK_SECRETS: weak }, process.cwd()), (error: Error) => {
      assert.ok(error instanceof ConfigError && error.variable === 'CESAR_WEBHOOK_SECRETS');
      assert.ok(!error.message.includes(weak));
      return true;
    });
    assert.throws(() => loadConfig({ CESAR_WEBHOOK_URL: 'https://example.com/hook' }, process.cwd()), /CESAR_WEBHOOK_URL/);
  });

  test('no key, hash or part of one appears in a log line or an answer', async () => {
    const answers: string[] = [];
    for (const key of [KEY, OTHER_KEY]) {
      answers.push((await server.client.get('/jobs', { headers: { 'X-API-Key': key } })).text);
      answers.push((await server.client.get(`/jobs/${randomUUID()}`, { headers: { 'X-API-Key': key } })).text);
    }
    const everything = [...server.logs, ...answers].join('\n');
    for (const secret of [KEY, OTHER_KEY, HASHED_ONLY_KEY, sha256(KEY), sha256(HASHED_ONLY_KEY)]) {
      assert.ok(!everything.includes(secret), 'a key or its digest leaked');
      assert.ok(!everything.includes(secret.slice(3, 19)), 'part of a key or its digest leaked');
    }
  });
});
