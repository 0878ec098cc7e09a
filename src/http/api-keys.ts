/**
 * @module http/api-keys
 * Optional API keys (`X-API-Key`). Only SHA-256 digests are held; a presented key is hashed and compared with
 * every digest in constant time, so neither the key's length nor which digest it matched shows in the timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const API_KEY_HEADER = 'x-api-key';

/** Who is calling, as far as jobs are concerned. */
export interface Caller {
  /**
   * A non-secret tag of the caller's key (a prefix of its SHA-256), stored as the owner of the jobs it submits
   * and keeping its idempotency keys apart; '' when keys are off.
   */
  readonly scope: string;
  /** Keys off, or an admin key: every job is visible. */
  readonly seesAll: boolean;
}

export interface ApiKeyVerifier {
  readonly enabled: boolean;
  /** The caller when the key is valid or no keys are configured; null otherwise. */
  verify(presented: string | readonly string[] | undefined): Caller | null;
}

const OPEN: Caller = Object.freeze({ scope: '', seesAll: true });

export function createApiKeyVerifier(digests: readonly Buffer[], adminDigests: readonly Buffer[] = []): ApiKeyVerifier {
  const all = [...digests.map((digest) => ({ digest, admin: false })), ...adminDigests.map((digest) => ({ digest, admin: true }))];
  return {
    enabled: all.length > 0,
    verify(presented) {
      if (all.length === 0) {
        return OPEN;
      }
      if (typeof presented !== 'string' || presented === '') {
        return null;
      }
      const digest = createHash('sha256').update(presented, 'utf8').digest();
      let match: (typeof all)[number] | null = null;
      for (const candidate of all) {
        // No early exit: every digest is compared whatever matched.
        if (timingSafeEqual(candidate.digest, digest) && match === null) {
          match = candidate;
        }
      }
      return match === null ? null : { scope: match.digest.subarray(0, 8).toString('hex'), seesAll: match.admin };
    },
  };
}

/** The owner to record on a job the caller submits: its key's tag, or null when keys are off. */
export function ownerOf(caller: Caller | undefined): string | null {
  return caller === undefined || caller.scope === '' ? null : caller.scope;
}

/** Whether the caller may see a job with this owner; a job of another key is answered as if it did not exist. */
export function canSee(caller: Caller | undefined, owner: string | null): boolean {
  return caller !== undefined && (caller.seesAll || owner === caller.scope);
}
