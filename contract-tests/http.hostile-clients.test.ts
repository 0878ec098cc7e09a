/**
 * Clumsy and hostile requests a probe of the running server found mishandled (issue 13): compressed bodies that
 * do not decompress, a file of exactly the upload limit, non-ASCII file names, `[::1]` where loopback is allowed,
 * HEAD, a form with no file chosen, the models path on the open health check, and the `pending` event.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

import { parseEventStream } from './support/contract.ts';
import { FIXTURES, jobForm, modelsDir, requireModel, startServer, waitForJob } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const KEY = `ck_${randomUUID().replaceAll('-', '')}`;

interface Problem {
  code: string;
  detail: string;
}

/** A multipart body written by hand, so that the file part's header bytes are exactly what a browser or curl sends. */
function rawForm(disposition: string, contents: Buffer, contentType: string | null = 'audio/ogg'): { body: Buffer; headers: Record<string, string> } {
  const boundary = `cesar${randomUUID().replaceAll('-', '')}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"${disposition}\r\n${contentType === null ? '' : `Content-Type: ${contentType}\r\n`}\r\n`;
  const body = Buffer.concat([Buffer.from(head, 'utf8'), contents, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe('hostile and clumsy clients', () => {
  let server: TestServer;
  let jfk: Buffer;
  before(async () => {
    server = await startServer({ CESAR_MAX_UPLOAD_SIZE_MB: '1', CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true', CESAR_WEBHOOK_SECRETS: SECRET });
    jfk = await readFile(path.join(FIXTURES, 'jfk.ogg'));
  });
  after(() => server.close());

  test('a compressed JSON body that does not decompress is a 400 problem; an unknown Content-Encoding is 415 naming it', async () => {
    const json = Buffer.from(JSON.stringify({ url: 'https://example.com/a.ogg' }));
    const broken: [string, Buffer][] = [
      ['gzip', Buffer.from('this is not gzip at all')],
      ['gzip', gzipSync(json).subarray(0, 12)],
      ['deflate', Buffer.from('not deflate either')],
      ['br', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12])],
    ];
    for (const [encoding, body] of broken) {
      const response = await server.client.post('/jobs/from-url', { body, headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
      assert.equal(response.status, 400, `${encoding}: ${response.text}`);
      assert.equal((response.json as Problem).code, 'invalid_request');
      assert.match((response.json as Problem).detail, new RegExp(encoding));
    }
    for (const encoding of ['compress', 'x-snappy']) {
      const response = await server.client.post('/jobs/from-url', { body: json, headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
      assert.equal(response.status, 415, response.text);
      assert.equal((response.json as Problem).code, 'unsupported_content_type');
      assert.ok((response.json as Problem).detail.includes(encoding), (response.json as Problem).detail);
    }
    // A form cannot be compressed either: busboy would read the compressed bytes as the form.
    const form = rawForm('; filename="a.ogg"', gzipSync(jfk));
    const multipart = await server.client.post('/jobs', { body: form.body, headers: { ...form.headers, 'content-encoding': 'gzip' } });
    assert.equal(multipart.status, 415, multipart.text);
    assert.ok((multipart.json as Problem).detail.includes('gzip'));
    // Well-formed compressed JSON still works (its URL check decides the answer, not the encoding).
    for (const [encoding, body] of [['gzip', gzipSync(json)], ['deflate', deflateSync(json)], ['br', brotliCompressSync(json)]] as const) {
      const response = await server.client.post('/jobs/from-url', { body: Buffer.from(body), headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
      assert.notEqual(response.status, 400, `${encoding} decompresses`);
      assert.notEqual(response.status, 500);
    }
  });

  test('a file of exactly the upload limit is accepted; one byte more is 413', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const limit = 1024 * 1024;
    const exact = await server.client.post('/jobs', { body: await jobForm('exact.ogg', {}, new Blob([Buffer.alloc(limit, 1)])) });
    assert.equal(exact.status, 202, exact.text);
    const over = await server.client.post('/jobs', { body: await jobForm('over.ogg', {}, new Blob([Buffer.alloc(limit + 1, 1)])) });
    assert.equal(over.status, 413, over.text);
    assert.equal((over.json as Problem).code, 'upload_too_large');
  });

  test('file names are read as UTF-8, filename* still works, and control and bidi characters are not echoed', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const cases: [string, string][] = [
      ['; filename="réunion_日本.ogg"', 'réunion_日本.ogg'],
      [`; filename*=UTF-8''r%C3%A9union_%E6%97%A5%E6%9C%AC.ogg`, 'réunion_日本.ogg'],
      ['; filename="invoice\u202Egpj.ogg"', 'invoicegpj.ogg'],
      ['; filename="a\u2066b\u200Fc\u0085d\u061C.ogg"', 'abcd.ogg'],
    ];
    for (const [disposition, expected] of cases) {
      const form = rawForm(disposition, jfk);
      const response = await server.client.post('/jobs', { body: form.body, headers: form.headers });
      assert.equal(response.status, 202, response.text);
      assert.equal((response.json as JobBody).file_name, expected, disposition);
    }
  });

  test('with private networks allowed, [::1] is allowed like 127.0.0.1, as url and as webhook_url', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    for (const body of [
      { url: 'http://[::1]:8080/audio.ogg' },
      { url: 'http://127.0.0.1:8080/audio.ogg', webhook_url: 'http://[::1]:8080/hook' },
      { url: 'http://[0:0:0:0:0:0:0:1]:8080/audio.ogg' },
    ]) {
      const response = await server.client.post('/jobs/from-url', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      assert.equal(response.status, 202, `${JSON.stringify(body)}: ${response.text}`);
    }
    // What is always refused stays refused: the unspecified address, and IPv4-compatible forms of refused ones.
    for (const url of ['http://[::]:8080/a.ogg', 'http://[::169.254.169.254]:8080/a.ogg', 'http://[::0.0.0.2]:8080/a.ogg']) {
      const response = await server.client.post('/jobs/from-url', { body: JSON.stringify({ url }), headers: { 'content-type': 'application/json' } });
      assert.equal(response.status, 422, url);
      assert.equal((response.json as Problem).code, 'url_forbidden');
    }
  });

  test('HEAD answers every GET route with its status and headers, and no body', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg') });
    const id = (created.json as JobBody).id;
    await waitForJob(server.client, id, ['completed']);
    const targets = [
      '/jobs',
      `/jobs/${id}`,
      `/jobs/${id}/result`,
      `/jobs/${id}/result?format=srt`,
      `/jobs/${id}/events`,
      `/jobs/${id}/deliveries`,
      `/jobs/${randomUUID()}`,
      '/jobs/not-a-uuid',
      '/health',
      '/health/live',
      '/models',
      '/openapi.yaml',
    ];
    for (const target of targets) {
      const get = await fetch(new URL(target, server.client.baseUrl));
      const getBody = await get.text();
      const head = await fetch(new URL(target, server.client.baseUrl), { method: 'HEAD' });
      assert.equal(head.status, get.status, `HEAD ${target}`);
      assert.equal(head.headers.get('content-type'), get.headers.get('content-type'), `HEAD ${target} content-type`);
      assert.equal(await head.text(), '', `HEAD ${target} has no body`);
      // Where the answer cannot change between the two requests (uptime, worker memory and checksums do), the
      // length announced is the GET body's.
      if (get.headers.has('content-length') && !['/jobs', '/health', '/health/live', '/models'].includes(target)) {
        assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(getBody)), `HEAD ${target} content-length`);
      }
    }
  });

  test('a form with no file chosen (filename="") says the file is missing', async () => {
    // A browser sends the part with an empty name, no bytes and application/octet-stream; other clients omit the type.
    for (const contentType of ['application/octet-stream', null]) {
      const form = rawForm('; filename=""', Buffer.alloc(0), contentType);
      const response = await server.client.post('/jobs', { body: form.body, headers: form.headers });
      assert.equal(response.status, 400, response.text);
      assert.equal((response.json as Problem).code, 'missing_file', response.text);
      assert.match((response.json as Problem).detail, /no file/i);
    }
  });

  test('a pending status event is stored at submission, so a replay after the job ended begins with it', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg') });
    const id = (created.json as JobBody).id;
    // Nobody watches while the job runs.
    await waitForJob(server.client, id, ['completed']);
    const replay = await server.client.get(`/jobs/${id}/events`);
    const statuses = parseEventStream(replay.text)
      .filter((event) => event.event === 'status')
      .map((event) => (JSON.parse(event.data) as { status: string }).status);
    assert.deepEqual(statuses, ['pending', 'processing', 'completed']);
  });
});

describe('the models path on GET /health', () => {
  test('with keys configured, only a keyed request sees where the models are; without keys everyone does', async () => {
    const keyed = await startServer({ CESAR_API_KEYS: KEY });
    const open = await startServer();
    try {
      const dir = modelsDir() ?? path.join(keyed.dataDir, 'no-models');
      const anonymous = await keyed.client.get('/health');
      assert.ok(!anonymous.text.includes(dir), `the open answer names the models directory: ${anonymous.text}`);
      assert.ok(!anonymous.text.includes(keyed.dataDir));
      const withKey = await keyed.client.get('/health', { headers: { 'X-API-Key': KEY } });
      assert.ok(withKey.text.includes(dir), withKey.text);
      const wrongKey = await keyed.client.get('/health', { headers: { 'X-API-Key': `${KEY}x` } });
      assert.ok(!wrongKey.text.includes(dir));
      // Without keys every operation is open anyway (GET /models included): hiding the path would protect nothing.
      const openDir = modelsDir() ?? path.join(open.dataDir, 'no-models');
      assert.ok((await open.client.get('/health')).text.includes(openDir));
    } finally {
      await Promise.all([keyed.close(), open.close()]);
    }
  });
});
