/**
 * @module jobs/database
 * The only module that imports the SQLite driver (`sqlite3` is unmaintained upstream: keep it replaceable).
 *
 * Two connections: one for reads, one for writes. node-sqlite3 cannot interleave transactions on one
 * connection (a statement issued while another caller's transaction is open silently joins it), so every write
 * goes through an in-process mutex on the write connection, and a read-then-write runs in `BEGIN IMMEDIATE`
 * so that `busy_timeout` applies (a deferred transaction that read first fails at once with SQLITE_BUSY).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { open } from 'sqlite';
import type { Database as SqliteConnection } from 'sqlite';
import sqlite3 from 'sqlite3';

export type SqlValue = string | number | bigint | null | Buffer;
export type SqlParams = readonly SqlValue[];

export interface Queryable {
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  /** Runs a statement and reports how many rows it changed. */
  run(sql: string, params?: SqlParams): Promise<{ changes: number }>;
}

/**
 * What the outbox, idempotency keys, the event log and the job store need of a database, whichever engine holds
 * it: SQLite here, PostgreSQL in src/postgres. SQL written against it uses `?` placeholders and the syntax both
 * accept (ON CONFLICT, RETURNING); the few spellings that differ go through `dialect`.
 */
export interface Database {
  readonly dialect: 'sqlite' | 'postgres';
  /** Reads on the read connection; never sees another caller's uncommitted writes. */
  readonly read: Queryable;
  /** One write statement, serialized with every other write. */
  write(sql: string, params?: SqlParams): Promise<{ changes: number }>;
  /** One write statement that returns rows (`... RETURNING`). */
  writeReturning<T>(sql: string, params?: SqlParams): Promise<T[]>;
  /**
   * Runs `fn` in a transaction that behaves as if run alone (SQLite: `BEGIN IMMEDIATE`, serialized with every
   * other write; PostgreSQL: SERIALIZABLE, retried on a serialization failure, so `fn` must only touch the database).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` only if no other node runs the task `name` at the moment (PostgreSQL: an advisory lock); resolves
   * undefined when another one does. On SQLite one process owns the file, so `fn` always runs.
   */
  exclusively<T>(name: string, fn: () => Promise<T>): Promise<T | undefined>;
  /** Whether the database answers now; `/health` is not ready while it does not. */
  reachable(): Promise<boolean>;
  close(): Promise<void>;
}

/** SQL spellings that differ between the two engines. */
export function sqlDialect(db: Pick<Database, 'dialect'>): { greatest: (a: string, b: string) => string; indexedBy: (index: string) => string } {
  return db.dialect === 'sqlite'
    ? { greatest: (a, b) => `MAX(${a}, ${b})`, indexedBy: (index) => `INDEXED BY ${index}` }
    : // PostgreSQL's planner has statistics and no index hints.
      { greatest: (a, b) => `GREATEST(${a}, ${b})`, indexedBy: () => '' };
}

/** The SQLite database, with the checks only SQLite has. */
export interface SqliteDatabase extends Database {
  /** The settings every connection must have; asserted at open. */
  settings(): Promise<DatabaseSettings>;
  integrityCheck(): Promise<string>;
}

export interface DatabaseSettings {
  sqliteVersion: string;
  journalMode: string;
  synchronous: number;
  busyTimeoutMs: number;
  foreignKeys: number;
}

export const BUSY_TIMEOUT_MS = 5000;
/** The WAL-reset corruption bug is fixed from this version on. */
export const MIN_SQLITE_VERSION = '3.51.3';
const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) {
      return diff;
    }
  }
  return 0;
}

function queryable(connection: SqliteConnection): Queryable {
  return {
    get: <T>(sql: string, params: SqlParams = []) => connection.get<T>(sql, ...params),
    all: <T>(sql: string, params: SqlParams = []) => connection.all<T[]>(sql, ...params),
    run: async (sql: string, params: SqlParams = []) => {
      const result = await connection.run(sql, ...params);
      return { changes: result.changes ?? 0 };
    },
  };
}

async function openConnection(file: string): Promise<SqliteConnection> {
  const connection = await open({ filename: file, driver: sqlite3.Database });
  await connection.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  await connection.exec('PRAGMA journal_mode = WAL');
  // FULL: a 202 promises the job survives power loss, and the write volume is a few rows per job.
  await connection.exec('PRAGMA synchronous = FULL');
  await connection.exec('PRAGMA foreign_keys = ON');
  return connection;
}

async function readSettings(connection: SqliteConnection): Promise<DatabaseSettings> {
  const version = await connection.get<{ v: string }>('SELECT sqlite_version() AS v');
  const journal = await connection.get<{ journal_mode: string }>('PRAGMA journal_mode');
  const synchronous = await connection.get<{ synchronous: number }>('PRAGMA synchronous');
  const busy = await connection.get<{ timeout: number }>('PRAGMA busy_timeout');
  const foreignKeys = await connection.get<{ foreign_keys: number }>('PRAGMA foreign_keys');
  return {
    sqliteVersion: version?.v ?? '0',
    journalMode: journal?.journal_mode ?? '',
    synchronous: synchronous?.synchronous ?? -1,
    busyTimeoutMs: busy?.timeout ?? -1,
    foreignKeys: foreignKeys?.foreign_keys ?? -1,
  };
}

function assertSettings(settings: DatabaseSettings): void {
  const problems: string[] = [];
  if (compareVersions(settings.sqliteVersion, MIN_SQLITE_VERSION) < 0) {
    problems.push(`SQLite ${settings.sqliteVersion} is older than ${MIN_SQLITE_VERSION}`);
  }
  if (settings.journalMode !== 'wal') {
    problems.push(`journal_mode is ${settings.journalMode}, not wal`);
  }
  if (settings.synchronous !== 2) {
    problems.push(`synchronous is ${settings.synchronous}, not FULL (2)`);
  }
  if (settings.busyTimeoutMs !== BUSY_TIMEOUT_MS) {
    problems.push(`busy_timeout is ${settings.busyTimeoutMs}`);
  }
  if (settings.foreignKeys !== 1) {
    problems.push('foreign_keys is off');
  }
  if (problems.length > 0) {
    throw new Error(`database settings refused: ${problems.join('; ')}`);
  }
}

/** A promise chain that runs one task at a time, in order. */
function createMutex(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task, task);
    tail = result.catch(() => undefined);
    return result;
  };
}

async function migrate(connection: SqliteConnection): Promise<void> {
  await connection.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const applied = new Set(
    (await connection.all<{ version: number }[]>('SELECT version FROM schema_migrations')).map((row) => row.version),
  );
  const files = (await readdir(MIGRATIONS_DIR)).filter((name) => /^\d{4}-[a-z0-9-]+\.sql$/.test(name)).sort();
  for (const name of files) {
    const version = Number(name.slice(0, 4));
    if (applied.has(version)) {
      continue;
    }
    const sql = await readFile(path.join(MIGRATIONS_DIR, name), 'utf8');
    await connection.exec('BEGIN IMMEDIATE');
    try {
      await connection.exec(sql);
      await connection.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', version, name, Date.now());
      await connection.exec('COMMIT');
    } catch (error) {
      await connection.exec('ROLLBACK');
      throw error;
    }
  }
}

/** Opens (creating if needed) the database file, asserts its settings and applies pending migrations. */
export async function openDatabase(file: string): Promise<SqliteDatabase> {
  const writer = await openConnection(file);
  const reader = await openConnection(file);
  try {
    assertSettings(await readSettings(writer));
    assertSettings(await readSettings(reader));
    await migrate(writer);
  } catch (error) {
    await Promise.allSettled([writer.close(), reader.close()]);
    throw error;
  }
  const exclusive = createMutex();
  const writeQueryable = queryable(writer);
  return {
    dialect: 'sqlite',
    read: queryable(reader),
    write: (sql, params) => exclusive(() => writeQueryable.run(sql, params)),
    writeReturning: <T>(sql: string, params?: SqlParams) => exclusive(() => writeQueryable.all<T>(sql, params)),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      exclusive(async () => {
        await writer.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(writeQueryable);
          await writer.exec('COMMIT');
          return result;
        } catch (error) {
          await writer.exec('ROLLBACK');
          throw error;
        }
      }),
    exclusively: (_name, fn) => fn(),
    reachable: () => Promise.resolve(true),
    settings: () => readSettings(writer),
    integrityCheck: async () => (await reader.get<{ integrity_check: string }>('PRAGMA integrity_check'))?.integrity_check ?? '',
    close: async () => {
      await exclusive(async () => {
        await Promise.all([writer.close(), reader.close()]);
      });
    },
  };
}
