import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { isAppError } from '../src/errors.ts';
import type { Resolver } from '../src/net/safe-request.ts';
import { safeDownload, safeRequest } from '../src/net/safe-request.ts';
import { createUrlPolicy } from '../src/net/url-policy.ts';
import { tempDir } from './support/harness.ts';

/** A server on loopback that counts every TCP connection it gets. */
interface Sentinel {
  port: number;
  connections: number;
  server: Server;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function sentinel(handler: http.RequestListener): Promise<Sentinel> {
  const server = http.createServer(handler);
  const state: Sentinel = { port: 0, connections: 0, server };
  server.on('connection', () => {
    state.connections += 1;
  });
  state.port = await listen(server);
  return state;
}

/** A raw TCP server that writes `reply` to every connection (for answers http.createServer will not send). */
async function rawServer(reply: (socket: net.Socket) => void): Promise<Sentinel> {
  const server = net.createServer((socket) => {
    socket.once('data', () => reply(socket));
    socket.on('error', () => undefined);
  });
  const state: Sentinel = { port: 0, connections: 0, server };
  server.on('connection', () => {
    state.connections += 1;
  });
  state.port = await listen(server);
  return state;
}

const AUDIO = Buffer.from('RIFF....WAVEfmt pretend audio bytes');

/** Names the tests resolve without DNS: one points at loopback, one mixes a public and a loopback address. */
const resolver: Resolver = (hostname) => {
  const table: Record<string, { address: string; family: number }[]> = {
    'loopback.test': [{ address: '127.0.0.1', family: 4 }],
    'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
    'mixed.test': [
      { address: '93.184.215.14', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ],
    'metadata.test': [{ address: '169.254.169.254', family: 4 }],
  };
  const found = table[hostname];
  return found ? Promise.resolve(found) : Promise.reject(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
};

async function failureCode(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    return isAppError(error) ? error.code : `not an AppError: ${String(error)}`;
  }
  return 'no failure';
}

describe('safe requests to client-given URLs', () => {
  let target: Sentinel;
  let dir: string;
  before(async () => {
    dir = await tempDir();
    target = await sentinel((req, res) => {
      if (req.url === '/redirect-loop') {
        res.writeHead(302, { location: '/redirect-loop' }).end();
        return;
      }
      if (req.url === '/moved') {
        res.writeHead(301, { location: '/a.wav' }).end();
        return;
      }
      if (req.url === '/missing') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': AUDIO.length }).end(AUDIO);
    });
  });
  after(async () => {
    target.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const strictPolicy = () => createUrlPolicy({ allowPrivateNetworks: false, allowedPorts: new Set([target.port, 80, 443]) });

  test('every refused URL form makes no connection to the loopback sentinel', async () => {
    const p = () => target.port;
    const forms: [string, string][] = [
      ['literal loopback', `http://127.0.0.1:${p()}/a.wav`],
      ['decimal', `http://2130706433:${p()}/a.wav`],
      ['hex', `http://0x7f000001:${p()}/a.wav`],
      ['octal', `http://0177.0.0.1:${p()}/a.wav`],
      ['short', `http://127.1:${p()}/a.wav`],
      ['zero', `http://0:${p()}/a.wav`],
      ['IPv6 loopback', `http://[::1]:${p()}/a.wav`],
      ['IPv4-mapped IPv6', `http://[::ffff:127.0.0.1]:${p()}/a.wav`],
      ['IPv4-compatible IPv6', `http://[::127.0.0.1]:${p()}/a.wav`],
      ['localhost', `http://localhost:${p()}/a.wav`],
      ['a name resolving to loopback', `http://loopback.test:${p()}/a.wav`],
      ['a name resolving to mapped loopback', `http://mapped.test:${p()}/a.wav`],
      ['a name with one public and one loopback address', `http://mixed.test:${p()}/a.wav`],
      ['a name resolving to metadata', `http://metadata.test:${p()}/a.wav`],
      ['credentials', `http://user:pw@loopback.test:${p()}/a.wav`],
      ['a port not allowed', `http://loopback.test:${p() + 1}/a.wav`],
      ['a file URL', 'file:///etc/passwd'],
    ];
    for (const [name, url] of forms) {
      const code = await failureCode(() => safeDownload(url, path.join(dir, 'refused'), { policy: strictPolicy(), maxBytes: 1 << 20, resolver }));
      assert.equal(code, 'url_forbidden', name);
      assert.equal(existsSync(path.join(dir, 'refused')), false, name);
    }
    assert.equal(target.connections, 0);
  });

  test('a redirect to a refused target is checked again and never followed', async () => {
    const redirector = await sentinel((req, res) => {
      res.writeHead(302, { location: decodeURIComponent(req.url?.slice(1) ?? '') }).end();
    });
    try {
      const before = target.connections;
      // Loopback is allowed here, but only on the redirector's port: the sentinel must stay untouched.
      const policy = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set([redirector.port]) });
      for (const location of [`http://127.0.0.1:${target.port}/a.wav`, 'http://169.254.169.254/latest/meta-data/', 'file:///etc/passwd', `http://0.0.0.0:${redirector.port}/`]) {
        const url = `http://127.0.0.1:${redirector.port}/${encodeURIComponent(location)}`;
        assert.equal(await failureCode(() => safeDownload(url, path.join(dir, 'redirected'), { policy, maxBytes: 1 << 20, resolver })), 'url_forbidden', location);
      }
      assert.equal(target.connections, before);
    } finally {
      redirector.server.close();
    }
  });

  test('an allowed URL downloads, following a redirect, and counts its bytes', async () => {
    const policy = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set([target.port]) });
    const file = path.join(dir, 'allowed.wav');
    const result = await safeDownload(`http://loopback.test:${target.port}/moved`, file, { policy, maxBytes: 1 << 20, resolver });
    assert.equal(result.status, 200);
    assert.equal(result.url.pathname, '/a.wav');
    assert.equal(result.bytes, AUDIO.length);
    assert.deepEqual(await readFile(file), AUDIO);
  });

  test('redirect loops stop at the hop limit and error answers are download failures', async () => {
    const policy = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set([target.port]) });
    const options = { policy, maxBytes: 1 << 20, maxRedirects: 2 };
    assert.equal(await failureCode(() => safeDownload(`http://127.0.0.1:${target.port}/redirect-loop`, path.join(dir, 'loop'), options)), 'download_failed');
    assert.equal(await failureCode(() => safeDownload(`http://127.0.0.1:${target.port}/missing`, path.join(dir, 'missing'), options)), 'download_failed');
    assert.equal(existsSync(path.join(dir, 'missing')), false);
    const unresolvable = await failureCode(() => safeDownload(`http://nowhere.test:${target.port}/`, path.join(dir, 'nowhere'), { ...options, resolver }));
    assert.equal(unresolvable, 'download_failed');
  });

  test('a body over the cap is cut off whatever Content-Length says', async () => {
    const cap = 64 * 1024;
    const flood = (socket: net.Socket, head: string, chunked = false): void => {
      socket.write(head);
      const data = Buffer.alloc(16 * 1024, 1);
      const chunk = chunked ? Buffer.concat([Buffer.from('4000\r\n'), data, Buffer.from('\r\n')]) : data;
      const pump = (): void => {
        while (!socket.destroyed && socket.write(chunk)) {
          // keep writing until the kernel buffer is full
        }
      };
      socket.on('drain', pump);
      pump();
    };
    const servers = await Promise.all([
      // No length at all, the body ends when the connection closes: only the streaming count can stop it.
      rawServer((socket) => flood(socket, 'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n')),
      // Chunked, endless.
      rawServer((socket) => flood(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', true)),
      // Declares a length over the cap: refused before the body is read.
      rawServer((socket) => flood(socket, `HTTP/1.1 200 OK\r\ncontent-length: ${10 * cap}\r\n\r\n`)),
      // Declares a small length and sends far more: the extra bytes are never taken as body.
      rawServer((socket) => flood(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n')),
    ]);
    try {
      const policy = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set(servers.map((s) => s.port)) });
      const outcomes: string[] = [];
      for (const [index, server] of servers.entries()) {
        const file = path.join(dir, `flood-${index}`);
        const code = await failureCode(() => safeDownload(`http://127.0.0.1:${server.port}/`, file, { policy, maxBytes: cap }));
        outcomes.push(code);
        if (code === 'no failure') {
          assert.ok((await readFile(file)).length <= 100);
        } else {
          assert.equal(existsSync(file), false, `the partial download ${index} was removed`);
        }
      }
      assert.deepEqual(outcomes.slice(0, 3), ['download_too_large', 'download_too_large', 'download_too_large']);
      assert.ok(['no failure', 'download_failed'].includes(outcomes[3] ?? ''), outcomes[3]);
      const small = await failureCode(() => safeRequest(`http://127.0.0.1:${servers[1]?.port}/`, { policy, maxBytes: cap }));
      assert.equal(small, 'download_too_large', 'the in-memory variant is capped too');
    } finally {
      for (const server of servers) {
        server.server.close();
      }
    }
  });

  test('a silent server hits the total timeout and the caller can abort', async () => {
    const silent = await rawServer(() => undefined);
    try {
      const policy = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set([silent.port]) });
      const url = `http://127.0.0.1:${silent.port}/`;
      assert.equal(await failureCode(() => safeRequest(url, { policy, maxBytes: 1024, totalTimeoutMs: 200 })), 'download_failed');
      const controller = new AbortController();
      const pending = safeRequest(url, { policy, maxBytes: 1024, signal: controller.signal });
      controller.abort(new Error('job canceled'));
      await assert.rejects(pending, /job canceled/);
    } finally {
      silent.server.close();
    }
  });

  test('a POST with a body returns the answer and does not follow redirects', async () => {
    let received = '';
    const hook = await sentinel((req, res) => {
      req.setEncoding('utf8');
      req.on('data', (text: string) => {
        received += text;
      });
      req.on('end', () => res.writeHead(307, { location: '/elsewhere' }).end('moved'));
    });
    try {
      const policy = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: new Set([hook.port]) });
      const answer = await safeRequest(`http://127.0.0.1:${hook.port}/hook`, {
        policy,
        method: 'POST',
        body: '{"event":"job.completed"}',
        headers: { 'content-type': 'application/json' },
        maxBytes: 1024,
      });
      assert.equal(answer.status, 307);
      assert.equal(answer.body.toString(), 'moved');
      assert.equal(received, '{"event":"job.completed"}');
      assert.equal(hook.connections, 1);
    } finally {
      hook.server.close();
    }
  });
});
