import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { storedUploads } from './support/backends.ts';
import { FIXTURES, requireModel, startServer, TEST_MODEL, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

interface Problem {
  status: number;
  code: string;
  detail?: string;
}

/** A loopback media server that counts connections; `/big` streams without a length, `/moved-*` redirect. */
interface MediaServer {
  port: number;
  connections: number;
  /** Resolves when a request to `/stall` arrives, then when its connection closes. */
  stalled: { arrived: Promise<void>; closed: Promise<void> };
  close(): void;
}

async function mediaServer(): Promise<MediaServer> {
  const speech = await readFile(path.join(FIXTURES, 'intake', 'speech.mp3'));
  const arrived = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/stall') {
      // Half a file, then silence: only an abort ends this download early.
      res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': speech.length });
      res.write(speech.subarray(0, 1000));
      req.socket.once('close', () => closed.resolve());
      arrived.resolve();
    } else if (url === '/speech.mp3') {
      res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': speech.length }).end(speech);
    } else if (url === '/big') {
      res.writeHead(200, { 'content-type': 'audio/mpeg' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk)) {
          // until the socket pushes back
        }
      };
      res.on('drain', pump);
      pump();
    } else if (url.startsWith('/moved?to=')) {
      res.writeHead(302, { location: decodeURIComponent(url.slice('/moved?to='.length)) }).end();
    } else {
      res.writeHead(404).end();
    }
  });
  const state: MediaServer = {
    port: 0,
    connections: 0,
    stalled: { arrived: arrived.promise, closed: closed.promise },
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
  server.on('connection', (socket) => {
    state.connections += 1;
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

function jsonBody(body: unknown): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
}

describe('submitting a URL', () => {
  let media: MediaServer;
  before(async () => {
    media = await mediaServer();
  });
  after(() => media.close());

  describe('with the default policy', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer();
    });
    after(() => server.close());

    test('every URL the policy refuses is 422 at submission, creates no job and makes no connection', async () => {
      const port = media.port;
      const refused = [
        `http://127.0.0.1:${port}/speech.mp3`,
        `http://2130706433:${port}/speech.mp3`,
        `http://0x7f.0.0.1:${port}/speech.mp3`,
        `http://0177.0.0.1:${port}/speech.mp3`,
        `http://[::ffff:127.0.0.1]:${port}/speech.mp3`,
        `http://[::1]:${port}/speech.mp3`,
        `http://localhost:${port}/speech.mp3`,
        `http://localhost.:${port}/speech.mp3`,
        'http://169.254.169.254/latest/meta-data/',
        'http://[fd00:ec2::254]/latest/meta-data/',
        'http://user:secret@example.com/a.mp3',
        'http://example.com:25/a.mp3',
        'ftp://example.com/a.mp3',
        'file:///etc/passwd',
      ];
      for (const url of refused) {
        const submitted = await server.client.post('/jobs/from-url', jsonBody({ url, model: TEST_MODEL }));
        assert.equal(submitted.status, 422, `${url}: ${submitted.text}`);
        assert.equal((submitted.json as Problem).code, 'url_forbidden', url);
      }
      assert.equal(media.connections, 0);
      assert.deepEqual((await server.client.get('/jobs')).json, { jobs: [], next_cursor: null });
    });

    test('malformed JSON and JSON that breaks its schema are 400', async () => {
      const cases: [string, { body: string; headers?: Record<string, string> }][] = [
        ['malformed JSON', { body: '{"url": ', headers: { 'content-type': 'application/json' } }],
        ['JSON without a url', jsonBody({ model: TEST_MODEL })],
        ['JSON with a file field', jsonBody({ url: 'https://example.com/a.mp3', file: 'a.mp3' })],
        ['JSON with a url that is not a URL', jsonBody({ url: 'not a url' })],
        ['JSON with a bad task', jsonBody({ url: 'https://example.com/a.mp3', task: 'summarize' })],
      ];
      for (const [name, request] of cases) {
        const response = await server.client.post('/jobs/from-url', request);
        assert.equal(response.status, 400, `${name}: ${response.text}`);
        assert.equal((response.json as Problem).code, 'invalid_request', name);
      }
    });

    test('a URL goes to its own operation: in an upload form it is 400, as JSON to POST /jobs 415, and a form to POST /jobs/from-url 415', async () => {
      const form = new FormData();
      form.append('url', 'https://example.com/a.mp3');
      form.append('file', new Blob(['x']), 'a.mp3');
      const inForm = await server.client.post('/jobs', { body: form });
      assert.equal(inForm.status, 400, inForm.text);
      assert.equal((inForm.json as Problem).code, 'invalid_request');
      assert.match((inForm.json as Problem).detail ?? '', /POST \/jobs\/from-url/);
      assert.deepEqual(await storedUploads(server.dataDir), [], 'the refused form left no file');

      const asJson = await server.client.post('/jobs', jsonBody({ url: 'https://example.com/a.mp3' }));
      assert.equal(asJson.status, 415, asJson.text);
      assert.equal((asJson.json as Problem).code, 'unsupported_content_type');
      assert.match((asJson.json as Problem).detail ?? '', /POST \/jobs\/from-url/);

      const urlForm = new FormData();
      urlForm.append('url', 'https://example.com/a.mp3');
      const formToUrl = await server.client.post('/jobs/from-url', { body: urlForm });
      assert.equal(formToUrl.status, 415, formToUrl.text);
      assert.equal((formToUrl.json as Problem).code, 'unsupported_content_type');
    });

    test('a JSON body over its small limit is 413', async () => {
      const response = await server.client.post('/jobs/from-url', jsonBody({ url: `https://example.com/${'a'.repeat(20_000)}` }));
      assert.equal(response.status, 413);
      assert.equal((response.json as Problem).code, 'upload_too_large');
    });
  });

  describe('with loopback allowed on the media server port only', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({
        CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true',
        CESAR_URL_ALLOWED_PORTS: String(media.port),
        CESAR_MAX_DOWNLOAD_SIZE_MB: '1',
      });
    });
    after(() => server.close());

    test('a submitted URL is downloaded by the worker and transcribed', async (t) => {
      if (!requireModel(t)) {
        return;
      }
      const url = `http://127.0.0.1:${media.port}/speech.mp3`;
      {
        const submitted = await server.client.post('/jobs/from-url', jsonBody({ url, model: TEST_MODEL }));
        assert.equal(submitted.status, 202, submitted.text);
        const accepted = submitted.json as JobBody;
        assert.equal(accepted.file_name, 'speech.mp3');
        const job = await waitForJob(server.client, accepted.id, ['completed', 'failed']);
        assert.equal(job.status, 'completed', JSON.stringify(job.error));
        assert.deepEqual(words((await server.client.get(`/jobs/${job.id}/result`)).text), ['and', 'so', 'my', 'fellow', 'americans']);
      }
      assert.deepEqual(await storedUploads(server.dataDir), [], 'downloads are removed with the job done');
    });

    test('what only the download can tell fails the job with its own code, and nothing leaks', async (t) => {
      if (!requireModel(t)) {
        return;
      }
      const base = `http://127.0.0.1:${media.port}`;
      const cases: [string, string][] = [
        [`${base}/missing.mp3`, 'download_failed'],
        [`${base}/big`, 'download_too_large'],
        [`${base}/moved?to=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`, 'url_forbidden'],
        [`${base}/moved?to=${encodeURIComponent(`http://127.0.0.1:${media.port + 1}/speech.mp3`)}`, 'url_forbidden'],
        [`${base}/moved?to=${encodeURIComponent('file:///etc/passwd')}`, 'url_forbidden'],
      ];
      for (const [url, code] of cases) {
        const submitted = await server.client.post('/jobs/from-url', jsonBody({ url }));
        assert.equal(submitted.status, 202, `${url}: ${submitted.text}`);
        const job = await waitForJob(server.client, (submitted.json as JobBody).id, ['completed', 'failed']);
        assert.equal(job.status, 'failed', url);
        assert.equal(job.error?.code, code, `${url}: ${JSON.stringify(job.error)}`);
        assert.equal(job.attempts, 1, 'not retried');
        assert.equal(JSON.stringify(job).includes(server.dataDir), false, 'no server path in the job');
      }
      assert.deepEqual(await storedUploads(server.dataDir), [], 'partial downloads are removed');
    });

    test('deleting a job stops its download at once', async () => {
      const submitted = await server.client.post('/jobs/from-url', jsonBody({ url: `http://127.0.0.1:${media.port}/stall` }));
      assert.equal(submitted.status, 202);
      await media.stalled.arrived;
      const deleted = await server.client.request('DELETE', `/jobs/${(submitted.json as JobBody).id}`);
      assert.equal(deleted.status, 204);
      // The download's timeout is minutes away: only the job's abort can close this connection now.
      await media.stalled.closed;
      while (server.service.dispatcher.running > 0) {
        await sleep(20);
      }
      assert.deepEqual(await storedUploads(server.dataDir), []);
    });
  });
});
