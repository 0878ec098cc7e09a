import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { ON_POSTGRES, storedUploads } from './support/backends.ts';
import { startServer } from './support/harness.ts';
import type { TestServer } from './support/harness.ts';

/**
 * Opens a chunked multipart POST /jobs (no Content-Length gives the size away) and writes the file part's
 * headers; the caller streams the file's bytes and decides how the request ends.
 */
function startFileUpload(baseUrl: string, fileName: string): http.ClientRequest {
  const { hostname, port } = new URL(baseUrl);
  const request = http.request({
    host: hostname,
    port,
    method: 'POST',
    path: '/jobs',
    headers: { 'content-type': 'multipart/form-data; boundary=cesar', 'transfer-encoding': 'chunked' },
  });
  request.on('error', () => undefined);
  request.write(`--cesar\r\ncontent-disposition: form-data; name="file"; filename="${fileName}"\r\ncontent-type: audio/wav\r\n\r\n`);
  return request;
}

describe('upload limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_UPLOAD_SIZE_MB: '1' });
  });
  after(() => server.close());

  test('a client that goes away in the middle of an upload leaves no file behind', async () => {
    const request = startFileUpload(server.client.baseUrl, 'half.wav');
    request.write(Buffer.alloc(256 * 1024, 7));
    if (ON_POSTGRES) {
      // A bucket sees nothing of an upload smaller than one multipart part (5 MiB) before its end: the store has
      // the bytes in hand, and must leave no object and no unfinished upload behind.
      await new Promise((resolve) => setTimeout(resolve, 500));
    } else {
      // The server has started writing the file...
      while ((await storedUploads(server.dataDir)).length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    // ...when the client disappears without ending the body.
    request.destroy();
    while ((await storedUploads(server.dataDir)).length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(await storedUploads(server.dataDir), []);
  });

  test('an upload over the limit is answered 413 while the client is still sending, and nothing is kept', async () => {
    // Chunked, so only counting the streamed bytes can stop it.
    const request = startFileUpload(server.client.baseUrl, 'big.wav');
    const chunk = Buffer.alloc(64 * 1024, 3);
    let sent = 0;
    const responded = once(request, 'response') as Promise<[http.IncomingMessage]>;
    let answered = false;
    void responded.then(() => {
      answered = true;
    });
    // Keep sending, never end the body: the answer must come without the server waiting for the end.
    while (!answered && sent < 64 * 1024 * 1024) {
      if (!request.write(chunk)) {
        await Promise.race([once(request, 'drain'), responded]);
      }
      sent += chunk.length;
    }
    const [response] = await responded;
    assert.equal(response.statusCode, 413);
    assert.equal(response.headers.connection, 'close');
    let body = '';
    response.setEncoding('utf8');
    for await (const text of response) {
      body += String(text);
    }
    assert.equal((JSON.parse(body) as { code: string }).code, 'upload_too_large');
    assert.ok(sent < 64 * 1024 * 1024, `the server answered after ${sent} bytes, before the body ended`);
    request.destroy();
    assert.deepEqual(await storedUploads(server.dataDir), []);
  });

  test('a declared length over the limit is refused before the body is read', async () => {
    const { hostname, port } = new URL(server.client.baseUrl);
    const request = http.request({
      host: hostname,
      port,
      method: 'POST',
      path: '/jobs',
      headers: { 'content-type': 'multipart/form-data; boundary=limit', 'content-length': String(1024 * 1024 * 1024) },
    });
    request.on('error', () => undefined);
    request.write('--limit\r\n');
    const [response] = (await once(request, 'response')) as [http.IncomingMessage];
    assert.equal(response.statusCode, 413);
    response.resume();
    request.destroy();
  });
});
