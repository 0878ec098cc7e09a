/**
 * @module contract-tests/support/backends
 * Which backends the test servers run on. Unset `CESAR_TEST_BACKEND` (or `sqlite-local`): SQLite and local folders
 * in the server's data directory, as always. `CESAR_TEST_BACKEND=postgres-s3` (`npm run test:contract:postgres`):
 * every server gets its own PostgreSQL database and its own bucket, keyed by its data directory so that a restart
 * on the same directory finds its jobs and uploads again. One PostgreSQL server (support/postgres.ts; or
 * `CESAR_TEST_DATABASE_URL`) and one moto server (support/s3-server.ts) are started for the whole test process, on
 * first use, and stopped after the last test.
 */
import { after } from 'node:test';

import { startPostgres } from './postgres.ts';
import type { TestPostgres } from './postgres.ts';
import { startS3Server } from './s3-server.ts';
import type { S3Server } from './s3-server.ts';

export type TestBackend = 'sqlite-local' | 'postgres-s3';

function readBackend(): TestBackend {
  const value = process.env.CESAR_TEST_BACKEND ?? 'sqlite-local';
  if (value !== 'sqlite-local' && value !== 'postgres-s3') {
    throw new Error(`CESAR_TEST_BACKEND must be sqlite-local or postgres-s3, not ${value}`);
  }
  return value;
}

export const TEST_BACKEND: TestBackend = readBackend();

/** True on the PostgreSQL + S3 run, where a few timings differ (pg-boss's heartbeat floor is 10 s). */
export const ON_POSTGRES = TEST_BACKEND === 'postgres-s3';

let servers: Promise<{ postgres: TestPostgres; s3: S3Server }> | null = null;
const byDataDir = new Map<string, Promise<Record<string, string>>>();

function sharedServers(): Promise<{ postgres: TestPostgres; s3: S3Server }> {
  servers ??= (async () => {
    const [postgres, s3] = await Promise.all([startPostgres(), startS3Server()]);
    return { postgres, s3 };
  })();
  return servers;
}

/**
 * The variables that put a server on `dataDir` on the run's backends: none on the SQLite run, nor for a test
 * that chose its own database or storage (`env` names CESAR_DATABASE_URL or CESAR_STORAGE_URL).
 */
export async function backendEnv(dataDir: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  if (!ON_POSTGRES || env.CESAR_DATABASE_URL !== undefined || env.CESAR_STORAGE_URL !== undefined) {
    return {};
  }
  let entry = byDataDir.get(dataDir);
  if (!entry) {
    entry = (async () => {
      const { postgres, s3 } = await sharedServers();
      const [databaseUrl, storageUrl] = await Promise.all([postgres.createDatabase(), s3.createBucket()]);
      return { ...s3.env, CESAR_DATABASE_URL: databaseUrl, CESAR_STORAGE_URL: storageUrl };
    })();
    byDataDir.set(dataDir, entry);
  }
  return entry;
}

// A root hook (this module is loaded by the harness at the top level): runs once, after every test file.
after(async () => {
  if (servers) {
    const { postgres, s3 } = await servers;
    servers = null;
    await Promise.all([postgres.stop(), s3.stop()]);
  }
});
