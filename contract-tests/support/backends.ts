/**
 * @module contract-tests/support/backends
 * Which backends the test servers run on. Unset `CESAR_TEST_BACKEND` (or `sqlite-local`): SQLite and local folders
 * in the server's data directory, as always. `CESAR_TEST_BACKEND=postgres-s3` (`npm run test:contract:postgres`):
 * every server gets its own PostgreSQL database and its own bucket, keyed by its data directory so that a restart
 * on the same directory finds its jobs and uploads again. One PostgreSQL server (support/postgres.ts; or
 * `CESAR_TEST_DATABASE_URL`) and one moto server (support/s3-server.ts) are started for the whole test process, on
 * first use, and stopped after the last test.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
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

interface Backends {
  databaseUrl: string;
  /** `s3://bucket/prefix` */
  storageUrl: string;
  bucket: string;
  prefix: string;
}

const byDataDir = new Map<string, Promise<Backends>>();

function sharedServers(): Promise<{ postgres: TestPostgres; s3: S3Server }> {
  servers ??= (async () => {
    const [postgres, s3] = await Promise.all([startPostgres(), startS3Server()]);
    return { postgres, s3 };
  })();
  return servers;
}

function backendsOf(dataDir: string): Promise<Backends> {
  let entry = byDataDir.get(dataDir);
  if (!entry) {
    entry = (async () => {
      const { postgres, s3 } = await sharedServers();
      const [databaseUrl, storageUrl] = await Promise.all([postgres.createDatabase(), s3.createBucket()]);
      const [, bucket = '', prefix = ''] = /^s3:\/\/([^/]+)\/?(.*)$/.exec(storageUrl) ?? [];
      return { databaseUrl, storageUrl, bucket, prefix };
    })();
    byDataDir.set(dataDir, entry);
  }
  return entry;
}

/** Set in a test's `env` to keep uploads in the data directory on every run (blank is unset to Cesar). */
export const LOCAL_STORAGE = { CESAR_STORAGE_URL: '' };

/**
 * The variables that put a server on `dataDir` on the run's backends: none on the SQLite run. A test that chose
 * its own database or storage (`env` names CESAR_DATABASE_URL or CESAR_STORAGE_URL) keeps that choice.
 */
export async function backendEnv(dataDir: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  if (!ON_POSTGRES || (env.CESAR_DATABASE_URL !== undefined && env.CESAR_STORAGE_URL !== undefined)) {
    return {};
  }
  const backends = await backendsOf(dataDir);
  const { s3 } = await sharedServers();
  return {
    ...(env.CESAR_DATABASE_URL === undefined && { CESAR_DATABASE_URL: backends.databaseUrl }),
    ...(env.CESAR_STORAGE_URL === undefined && { ...s3.env, CESAR_STORAGE_URL: backends.storageUrl }),
  };
}

/**
 * The job ids whose uploads the server on `dataDir` holds: the `uploads/` folder, or on the S3 run the bucket's
 * `uploads/` keys, an unfinished multipart upload as `<id> (unfinished upload)`.
 */
export async function storedUploads(dataDir: string): Promise<string[]> {
  const backends = ON_POSTGRES ? byDataDir.get(dataDir) : undefined;
  if (!backends) {
    return readdir(path.join(dataDir, 'uploads'));
  }
  const { bucket, prefix } = await backends;
  const { s3 } = await sharedServers();
  const folder = prefix === '' ? 'uploads/' : `${prefix}/uploads/`;
  return (await s3.keys(bucket)).filter((key) => key.startsWith(folder)).map((key) => key.slice(folder.length));
}

// A root hook (this module is loaded by the harness at the top level): runs once, after every test file.
after(async () => {
  if (servers) {
    const { postgres, s3 } = await servers;
    servers = null;
    await Promise.all([postgres.stop(), s3.stop()]);
  }
});
