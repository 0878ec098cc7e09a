/**
 * @module contract-tests/support/postgres
 * A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, listening on 127.0.0.1 and a
 * free port only, fsync off. PostgreSQL refuses to run as root, and tests run as root here: then it runs as
 * the `postgres` user. `CESAR_TEST_DATABASE_URL` (a server CI started once) is used instead when set.
 * Each test server gets its own database from `createDatabase()`.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

import pg from 'pg';

const run = promisify(execFile);

export interface TestPostgres {
  /** A superuser URL of the `postgres` database. */
  adminUrl: string;
  /** A new, empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: open connections are cut), keeping its data. Not for a shared server. */
  stopServer(): Promise<void>;
  /** Starts it again on the same port and data. */
  startServer(): Promise<void>;
  /** `stopServer()` then `startServer()`. */
  restart(): Promise<void>;
  /** Stops it for good and removes its files. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Runs a PostgreSQL binary, as the `postgres` user when this process is root. */
async function asPostgres(binary: string, args: string[]): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  await (asRoot ? run('runuser', ['-u', 'postgres', '--', binary, ...args]) : run(binary, args));
}

async function hasBinary(name: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether PostgreSQL can be had; skips `t` with the reason when not, except under CI, where a missing server
 * fails the test (CI must test both backends).
 */
export async function requirePostgres(t: TestContext): Promise<boolean> {
  if (process.env.CESAR_TEST_DATABASE_URL || ((await hasBinary('initdb')) && (await hasBinary('pg_ctl')))) {
    return true;
  }
  if (process.env.CI === 'true') {
    throw new Error('PostgreSQL (initdb, pg_ctl) is not installed, and CI must run the PostgreSQL tests');
  }
  t.skip('NO POSTGRESQL: initdb and pg_ctl are not on PATH, and CESAR_TEST_DATABASE_URL is unset');
  return false;
}

function databaseCreator(adminUrl: string): () => Promise<string> {
  return async () => {
    const name = `cesar_${randomUUID().replaceAll('-', '')}`;
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name}`);
    } finally {
      await client.end();
    }
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  };
}

export async function startPostgres(): Promise<TestPostgres> {
  const shared = process.env.CESAR_TEST_DATABASE_URL;
  if (shared) {
    const refuse = (): Promise<void> => Promise.reject(new Error('a shared CESAR_TEST_DATABASE_URL server cannot be stopped by a test'));
    return { adminUrl: shared, createDatabase: databaseCreator(shared), stopServer: refuse, startServer: refuse, restart: refuse, stop: () => Promise.resolve() };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cesar-pg-'));
  const dataDir = path.join(dir, 'data');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-instructions']);
  const port = await freePort();
  const options = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const startCluster = async (): Promise<void> => {
    await asPostgres('pg_ctl', ['-D', dataDir, '-o', options, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', 'start']);
  };
  const stopCluster = async (): Promise<void> => {
    await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  await startCluster();
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let running = true;
  return {
    adminUrl,
    createDatabase: databaseCreator(adminUrl),
    async stopServer() {
      await stopCluster();
      running = false;
    },
    async startServer() {
      await startCluster();
      running = true;
    },
    async restart() {
      await stopCluster();
      running = false;
      await startCluster();
      running = true;
    },
    async stop() {
      if (running) {
        await stopCluster().catch(() => undefined);
        running = false;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
