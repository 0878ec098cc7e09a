/**
 * @module http/api-keys
 * Optional API keys (`X-API-Key`). Only SHA-256 digests are held; a presented key is hashed and compared with
 * every digest in constant time, so neither the key's length nor which digest it matched shows in the timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const API_KEY_HEADER = 'x-api-key';

export interface ApiKeyVerifier {
  /** Whether keys are configured: the served spec declares the key requirement only then. */
  readonly enabled: boolean;
  /**
   * The caller's scope (a non-secret tag of the matching key, used to keep idempotency keys apart) when the key
   * is valid or no keys are configured; null otherwise.
   */
  verify(presented: string | readonly string[] | undefined): string | null;
}

export function createApiKeyVerifier(digests: readonly Buffer[]): ApiKeyVerifier {
  return {
    enabled: digests.length > 0,
    verify(presented) {
      if (digests.length === 0) {
        return '';
      }
      if (typeof presented !== 'string' || presented === '') {
        return null;
      }
      const digest = createHash('sha256').update(presented, 'utf8').digest();
      let match: Buffer | null = null;
      for (const candidate of digests) {
        // No early exit: every digest is compared whatever matched.
        if (timingSafeEqual(candidate, digest) && match === null) {
          match = candidate;
        }
      }
      return match === null ? null : match.subarray(0, 8).toString('hex');
    },
  };
}
