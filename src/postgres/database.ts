/**
 * @module postgres/database
 * The `Database` of src/jobs/database.ts on PostgreSQL; with src/postgres/job-store.ts the only importers of
 * `pg` and `pg-boss`. A pool reconnects by itself when the server comes back: a query made while it is away
 * fails (the caller's retry or lease logic copes), and no connection error may end the process.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import type { Database, Queryable, SqlParams } from '../jobs/database.ts';
import type { Logger } from '../logger.ts';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** First key of every advisory lock Cesar takes ("cesa"), so its locks never meet another application's. */
const LOCK_NAMESPACE = 0x63657361;
const SERIALIZATION_FAILURE = '40001';
const DEADLOCK = '40P01';
const MAX_TRANSACTION_TRIES = 20;
const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * BIGINT times and COUNT(*) arrive as strings by default (they may exceed 2^53). Cesar's values are
 * milliseconds and row counts, far below it: numbers, as SQLite gives them. Set on this pool only, so that
 * pg-boss and any other user of `pg` in the process keep the default.
 */
const asNumber = (value: string): number => Number(value);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID || oid === NUMERIC_OID ? asNumber : (pg.types.getTypeParser(oid, format ?? 'text') as unknown)) as typeof pg.types.getTypeParser,
};

/** `?` placeholders (the form SQLite and the shared SQL use) as `$1, $2, ...`; quoted text and comments are left alone. */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '?') {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  return out;
}

/** A client that runs the shared SQL. */
export function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  const query = async <T>(sql: string, params: SqlParams = []): Promise<{ rows: T[]; rowCount: number | null }> => {
    const result = await client.query(numberPlaceholders(sql), params as unknown[]);
    return { rows: result.rows as T[], rowCount: result.rowCount };
  };
  return {
    get: async <T>(sql: string, params?: SqlParams): Promise<T | undefined> => (await query<T>(sql, params)).rows[0],
    all: async <T>(sql: string, params?: SqlParams): Promise<T[]> => (await query<T>(sql, params)).rows,
    run: async (sql, params) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
  };
}

export interface PostgresDatabase extends Database {
  readonly dialect: 'postgres';
  readonly pool: pg.Pool;
  /**
   * Runs `fn` on one client in a READ COMMITTED transaction (for work that must be atomic but may run beside
   * other nodes' work, such as a claim through pg-boss's SKIP LOCKED).
   */
  withTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

export interface PostgresOptions {
  url: string;
  logger: Logger;
  /** Connections in the pool. */
  max?: number;
}

const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

/** One client for the length of `fn`; an error on its socket while checked out is reported, not thrown at the process. */
async function withClient<T>(pool: pg.Pool, logger: Logger, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const onError = (error: Error): void => logger.warn('PostgreSQL connection lost', { error });
  client.on('error', onError);
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (error) {
    // A connection that failed mid-transaction is not given back to the pool for reuse.
    broken = error instanceof Error && !/^[0-9A-Z]{5}$/.test(sqlState(error) ?? '') ? error : undefined;
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

async function inTransaction<T>(client: pg.PoolClient, begin: string, fn: () => Promise<T>): Promise<T> {
  await client.query(begin);
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function migrate(pool: pg.Pool, logger: Logger): Promise<void> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((name) => /^\d{4}-[a-z0-9-]+\.sql$/.test(name)).sort();
  await withClient(pool, logger, async (client) => {
    // Nodes that start together queue here; each applies what is left when its turn comes, which is nothing
    // after the first. A session lock, so that a node that dies holding it frees it with its connection.
    await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [LOCK_NAMESPACE, 'migrations']);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
      );
      const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((row) => row.version));
      for (const name of files) {
        const version = Number(name.slice(0, 4));
        if (applied.has(version)) {
          continue;
        }
        const sql = await readFile(path.join(MIGRATIONS_DIR, name), 'utf8');
        await inTransaction(client, 'BEGIN', async () => {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [version, name, Date.now()]);
        });
        logger.info('database migration applied', { version, name });
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_NAMESPACE, 'migrations']);
    }
  });
}

/** Connects, applies pending migrations (one node at a time) and returns the database. */
export async function openPostgres(options: PostgresOptions): Promise<PostgresDatabase> {
  const { logger } = options;
  const pool = new pg.Pool({
    connectionString: options.url,
    types,
    max: options.max ?? 10,
    // A server that is down must make queries fail soon (so /health can say so), not hang.
    connectionTimeoutMillis: 5000,
    application_name: 'cesar',
  });
  // An idle connection that the server drops (a restart) emits here; without a listener the process would die.
  pool.on('error', (error) => logger.warn('PostgreSQL connection lost; the pool reconnects on the next query', { error }));
  try {
    await migrate(pool, logger);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  const shared = queryable(pool);

  const serializable = async <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withClient(pool, logger, (client) =>
          inTransaction(client, 'BEGIN ISOLATION LEVEL SERIALIZABLE', () => fn(queryable(client))),
        );
      } catch (error) {
        const state = sqlState(error);
        if ((state !== SERIALIZATION_FAILURE && state !== DEADLOCK) || attempt >= MAX_TRANSACTION_TRIES) {
          throw error;
        }
        // Another node's transaction touched the same rows: run again on the state it left.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
      }
    }
  };

  return {
    dialect: 'postgres',
    pool,
    read: shared,
    write: (sql, params) => shared.run(sql, params),
    writeReturning: (sql, params) => shared.all(sql, params),
    transaction: serializable,
    withTransaction: (fn) => withClient(pool, logger, (client) => inTransaction(client, 'BEGIN', () => fn(client))),
    async exclusively(name, fn) {
      return withClient(pool, logger, async (client) => {
        const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [LOCK_NAMESPACE, name]);
        if (!rows[0]?.locked) {
          return undefined;
        }
        try {
          return await fn();
        } finally {
          await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_NAMESPACE, name]).catch(() => undefined);
        }
      });
    },
    async reachable() {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), 2000);
      });
      try {
        return await Promise.race([pool.query('SELECT 1').then(() => true, () => false), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => pool.end(),
  };
}
