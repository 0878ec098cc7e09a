import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';

import { parse } from 'yaml';

import { ERROR_CODES } from '../src/errors.ts';
import { SPEC_PATH } from '../src/http/app.ts';
import { requireModel, startServer, TEST_MODEL } from './support/harness.ts';

interface Health {
  status: string;
  checks: { name: string; ok: boolean; detail: string }[];
}

describe('service endpoints', () => {
  test('health is ready and models lists what is installed, with capabilities read from the files', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer();
    try {
      const health = await server.client.get('/health');
      assert.equal(health.status, 200);
      assert.equal((health.json as Health).status, 'ready');

      const models = (await server.client.get('/models')).json as {
        default_model: string;
        models: { name: string; default: boolean; multilingual: boolean; languages: string[]; word_timestamps: boolean; size_bytes: number }[];
      };
      assert.equal(models.default_model, TEST_MODEL);
      const tiny = models.models.find((model) => model.name === TEST_MODEL);
      assert.ok(tiny);
      assert.equal(tiny.default, true);
      assert.equal(tiny.multilingual, false);
      assert.deepEqual(tiny.languages, ['en']);
      assert.equal(tiny.word_timestamps, true);
      assert.ok(tiny.size_bytes > 10_000_000);
      const base = models.models.find((model) => model.name === 'base');
      if (base) {
        assert.equal(base.multilingual, true);
        assert.ok(base.languages.includes('de') && base.languages.length >= 99);
      }
    } finally {
      await server.close();
    }
  });

  test('without its default model the server still starts and reports not ready', async () => {
    const server = await startServer({ CESAR_MODELS_DIR: '/nonexistent/cesar-models' });
    try {
      const health = await server.client.get('/health');
      assert.equal(health.status, 503);
      const body = health.json as Health;
      assert.equal(body.status, 'not_ready');
      assert.equal(body.checks.find((check) => check.name === 'default_model')?.ok, false);
      const models = (await server.client.get('/models')).json as { models: unknown[] };
      assert.deepEqual(models.models, []);
    } finally {
      await server.close();
    }
  });

  test('the spec is served as YAML and JSON, and Swagger UI at /docs; without API keys it declares no security', async () => {
    const server = await startServer();
    try {
      const base = server.client.baseUrl;
      const yaml = await fetch(`${base}/openapi.yaml`);
      assert.equal(yaml.status, 200);
      const served = parse(await yaml.text()) as Record<string, unknown>;
      const json = (await (await fetch(`${base}/openapi.json`)).json()) as Record<string, unknown>;
      assert.deepEqual(json, served);
      assert.equal(served.openapi, '3.1.0');
      // A server without keys answers no 401 and needs no key: its spec says neither.
      const text = JSON.stringify(served);
      assert.doesNotMatch(text, /"security"|"securitySchemes"|"401"|Unauthorized/);
      // Everything else is the file as written.
      const file = parse(await readFile(SPEC_PATH, 'utf8')) as { paths: Record<string, Record<string, { operationId?: string }>> };
      assert.deepEqual(
        Object.keys((served as typeof file).paths).map((route) => Object.keys((served as typeof file).paths[route] ?? {})),
        Object.keys(file.paths).map((route) => Object.keys(file.paths[route] ?? {})),
      );
      const docs = await fetch(`${base}/docs/`);
      assert.equal(docs.status, 200);
      assert.match(await docs.text(), /swagger-ui/);
      assert.doesNotMatch(await (await fetch(`${base}/docs/swagger-ui-init.js`)).text(), /"ApiKey"|"securitySchemes"/);
    } finally {
      await server.close();
    }
  });

  test('405 names the allowed methods in Allow (RFC 9110)', async () => {
    const server = await startServer();
    try {
      for (const [method, target, allowed] of [
        ['PUT', '/jobs', 'GET, POST'],
        ['PATCH', '/jobs/00000000-0000-4000-8000-000000000000', 'GET, DELETE'],
        ['DELETE', '/health', 'GET'],
      ] as const) {
        const response = await fetch(`${server.client.baseUrl}${target}`, { method });
        assert.equal(response.status, 405, `${method} ${target}`);
        assert.equal(response.headers.get('allow'), allowed, `${method} ${target}`);
        assert.equal((await response.json() as { status: number }).status, 405);
      }
    } finally {
      await server.close();
    }
  });

  test('the error registry and the spec list the same codes', async () => {
    const spec = parse(await readFile(SPEC_PATH, 'utf8')) as { components: { schemas: { ErrorCode: { enum: string[] } } } };
    assert.deepEqual([...spec.components.schemas.ErrorCode.enum].sort(), Object.keys(ERROR_CODES).sort());
  });
});
