import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { FIXTURES, jobForm, requireModel, startServer } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

/** A multipart body sent in two parts: everything but the last bytes, then the rest when `finish()` is called. */
async function heldUpload(): Promise<{ body: ReadableStream<Uint8Array>; headers: Record<string, string>; finish: () => void }> {
  const boundary = `cesar${randomUUID().replaceAll('-', '')}`;
  const file = await readFile(path.join(FIXTURES, 'jfk.ogg'));
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="jfk.ogg"\r\nContent-Type: audio/ogg\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let finish: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(new Uint8Array(Buffer.concat([head, file.subarray(0, 1000)])));
      await released;
      controller.enqueue(new Uint8Array(Buffer.concat([file.subarray(1000), tail])));
      controller.close();
    },
  });
  return { body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, finish: () => finish() };
}

describe('Idempotency-Key on POST /jobs', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('concurrent identical submissions with one key create exactly one job', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 6 }, async () => server.client.post('/jobs', { body: await jobForm('jfk.ogg', { language: 'en' }), headers: { 'Idempotency-Key': key } })),
    );
    for (const answer of answers) {
      assert.ok(answer.status === 202 || answer.status === 409, `answered ${answer.status}`);
    }
    const accepted = answers.filter((answer) => answer.status === 202).map((answer) => (answer.json as JobBody).id);
    assert.ok(accepted.length >= 1);
    assert.equal(new Set(accepted).size, 1, 'every accepted answer names the same job');
    const list = await server.client.get('/jobs');
    assert.deepEqual((list.json as { jobs: JobBody[] }).jobs.map((job) => job.id), [accepted[0]]);

    // Once answered, the same key and payload give the original answer again, byte for byte.
    const first = answers.find((answer) => answer.status === 202);
    const again = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { language: 'en' }), headers: { 'Idempotency-Key': key } });
    assert.equal(again.status, 202);
    assert.equal(again.text, first?.text);
    assert.equal(again.headers.get('location'), `/jobs/${accepted[0]}`);
  });

  test('the same key with another file or other fields is refused with 422', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = randomUUID();
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': key } });
    assert.equal(created.status, 202);
    for (const form of [await jobForm('espeak-en.ogg'), await jobForm('jfk.ogg', { language: 'en' })]) {
      const refused = await server.client.post('/jobs', { body: form, headers: { 'Idempotency-Key': key } });
      assert.equal(refused.status, 422);
      assert.equal((refused.json as { code: string }).code, 'idempotency_key_mismatch');
    }
    // Another key is another submission.
    const other = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': randomUUID() } });
    assert.equal(other.status, 202);
    assert.notEqual((other.json as JobBody).id, (created.json as JobBody).id);
  });

  test('a duplicate sent while the first upload is still in flight is refused with 409', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = `"${randomUUID()}"`;
    const upload = await heldUpload();
    const first = server.client.post('/jobs', { body: upload.body, headers: { ...upload.headers, 'Idempotency-Key': key } });
    let duplicate;
    // The first request claims the key before it reads its body; wait until it has.
    for (;;) {
      duplicate = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': key } });
      if (duplicate.status === 409) {
        break;
      }
      assert.equal(duplicate.status, 202, 'only the held request could have claimed the key');
    }
    assert.equal((duplicate.json as { code: string }).code, 'idempotency_key_in_use');
    // The key is the client's, whichever way it submits.
    const byUrl = await server.client.post('/jobs/from-url', {
      body: JSON.stringify({ url: 'https://example.com/a.ogg' }),
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
    });
    assert.equal(byUrl.status, 409, byUrl.text);
    assert.equal((byUrl.json as { code: string }).code, 'idempotency_key_in_use');
    upload.finish();
    const created = await first;
    assert.equal(created.status, 202);
  });

  test('a URL submission in JSON is fingerprinted by its fields', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = randomUUID();
    const submit = (url: string) =>
      server.client.post('/jobs/from-url', { body: JSON.stringify({ url }), headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key } });
    const created = await submit('https://example.com/a.ogg');
    assert.equal(created.status, 202);
    const again = await submit('https://example.com/a.ogg');
    assert.equal(again.status, 202);
    assert.equal((again.json as JobBody).id, (created.json as JobBody).id);
    const other = await submit('https://example.com/b.ogg');
    assert.equal(other.status, 422);
    assert.equal((other.json as { code: string }).code, 'idempotency_key_mismatch');
  });

  test('a key that is not visible ASCII is refused with 400', async () => {
    const response = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': 'x'.repeat(300) } });
    assert.equal(response.status, 400);
  });

  test('a submission that failed frees its key for a retry', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = randomUUID();
    const refused = await server.client.post('/jobs', { body: await jobForm('jfk.ogg', { model: 'not-installed' }), headers: { 'Idempotency-Key': key } });
    assert.equal(refused.status, 422);
    const retried = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': key } });
    assert.equal(retried.status, 202);
  });

  test('a key whose job was deleted makes a new job, never an answer pointing at nothing', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const key = randomUUID();
    const first = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 202);
    const firstId = (first.json as JobBody).id;
    assert.equal((await server.client.delete(`/jobs/${firstId}`)).status, 204);
    const again = await server.client.post('/jobs', { body: await jobForm('jfk.ogg'), headers: { 'Idempotency-Key': key } });
    assert.equal(again.status, 202);
    const againId = (again.json as JobBody).id;
    assert.notEqual(againId, firstId);
    assert.equal((await server.client.get(`/jobs/${againId}`)).status, 200);
  });
});
