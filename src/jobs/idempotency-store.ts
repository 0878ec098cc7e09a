/**
 * @module jobs/idempotency-store
 * Idempotency keys of `POST /jobs`. The claim is one `INSERT ... ON CONFLICT DO NOTHING` on the (scope, key)
 * primary key, so of two concurrent requests with one key exactly one becomes the owner, whatever the timing.
 * A claim in flight is a lease its request renews while it runs: a key whose node died mid-request (on a shared
 * database no node's start may tell a dead node's claims from live ones) is free again once the lease runs out.
 */
import type { Database } from './database.ts';

export type IdempotencyClaim =
  | { kind: 'owner' }
  | { kind: 'in_flight' }
  | { kind: 'done'; fingerprint: string; status: number; body: string; jobId: string };

interface KeyRow {
  fingerprint: string | null;
  job_id: string | null;
  response_status: number | null;
  response_body: string | null;
}

/** How long a claim in flight lasts unless its request renews it. */
export const IN_FLIGHT_LEASE_MS = 60_000;

export interface IdempotencyStore {
  claim(scope: string, key: string, now: number): Promise<IdempotencyClaim>;
  /** Extends a claim in flight by `IN_FLIGHT_LEASE_MS` from `now` (the owner's request is still running). */
  renew(scope: string, key: string, now: number): Promise<void>;
  /**
   * Records the answer of the request that created a job. An upsert: if the client went away meanwhile and its
   * claim was abandoned, the job exists all the same, and a retry with the key must get it, not a second one.
   */
  complete(
    scope: string,
    key: string,
    record: { fingerprint: string; jobId: string; status: number; body: string },
    now: number,
    ttlMs: number,
  ): Promise<void>;
  /** Frees a key whose request failed before it made a job, so that the client may retry with it. */
  abandon(scope: string, key: string): Promise<void>;
  /** At start-up of the only node: requests in flight died with the previous process. */
  clearInFlight(): Promise<number>;
  purgeExpired(now: number): Promise<number>;
}

export function createIdempotencyStore(db: Database): IdempotencyStore {
  return {
    claim(scope, key, now) {
      return db.transaction(async (tx) => {
        // Expired keys go here (the index on expires_at makes it cheap), so the table never outgrows the window.
        await tx.run('DELETE FROM idempotency_keys WHERE expires_at <= ?', [now]);
        // A key lives no longer than its job: replaying the answer of a deleted job (DELETE, or its retention
        // ended) would hand out a Location that is 404. The same request makes a new job instead.
        await tx.run(
          `DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND job_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = idempotency_keys.job_id)`,
          [scope, key],
        );
        const inserted = await tx.run(
          `INSERT INTO idempotency_keys (scope, key, created_at, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (scope, key) DO NOTHING`,
          [scope, key, now, now + IN_FLIGHT_LEASE_MS],
        );
        if (inserted.changes === 1) {
          return { kind: 'owner' } as const;
        }
        const row = await tx.get<KeyRow>(
          'SELECT fingerprint, job_id, response_status, response_body FROM idempotency_keys WHERE scope = ? AND key = ?',
          [scope, key],
        );
        if (!row || row.response_status === null || row.fingerprint === null || row.response_body === null || row.job_id === null) {
          return { kind: 'in_flight' } as const;
        }
        return { kind: 'done', fingerprint: row.fingerprint, status: row.response_status, body: row.response_body, jobId: row.job_id } as const;
      });
    },
    async complete(scope, key, record, now, ttlMs) {
      await db.write(
        `INSERT INTO idempotency_keys (scope, key, created_at, expires_at, fingerprint, job_id, response_status, response_body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (scope, key) DO UPDATE SET expires_at = excluded.expires_at, fingerprint = excluded.fingerprint,
                job_id = excluded.job_id, response_status = excluded.response_status, response_body = excluded.response_body`,
        [scope, key, now, now + ttlMs, record.fingerprint, record.jobId, record.status, record.body],
      );
    },
    async abandon(scope, key) {
      await db.write('DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND response_status IS NULL', [scope, key]);
    },
    async renew(scope, key, now) {
      await db.write('UPDATE idempotency_keys SET expires_at = ? WHERE scope = ? AND key = ? AND response_status IS NULL', [
        now + IN_FLIGHT_LEASE_MS,
        scope,
        key,
      ]);
    },
    async clearInFlight() {
      return (await db.write('DELETE FROM idempotency_keys WHERE response_status IS NULL')).changes;
    },
    async purgeExpired(now) {
      return (await db.write('DELETE FROM idempotency_keys WHERE expires_at <= ?', [now])).changes;
    },
  };
}
