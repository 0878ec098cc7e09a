/**
 * @module http/idempotency
 * `Idempotency-Key` on `POST /jobs` (draft-ietf-httpapi-idempotency-key-header). The key is claimed before the
 * body is read, so a duplicate sent while the first request still uploads is refused at once with 409; a key
 * already answered needs the payload's fingerprint (file bytes and fields), so that request is read first.
 */
import { createHash } from 'node:crypto';

import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { IdempotencyClaim, IdempotencyStore } from '../jobs/idempotency-store.ts';
import { IN_FLIGHT_LEASE_MS } from '../jobs/idempotency-store.ts';

export interface IdempotencyLocals {
  idempotency?: { scope: string; key: string; claim: IdempotencyClaim };
}

const KEY_PATTERN = /^[\x21-\x7E]{1,255}$/;

/** The key from the header: a bare token or a structured-field string (`"..."`). */
export function parseIdempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) {
    return null;
  }
  const raw = (Array.isArray(header) ? header.join(',') : header).trim();
  const unquoted = /^"(.*)"$/.exec(raw)?.[1] ?? raw;
  if (!KEY_PATTERN.test(unquoted)) {
    throw new AppError('invalid_request', 'The Idempotency-Key header must be 1 to 255 visible ASCII characters.', {
      errors: [{ location: 'header.idempotency-key', message: 'must be 1 to 255 visible ASCII characters' }],
    });
  }
  return unquoted;
}

/** What makes two submissions "the same payload": the file's SHA-256 (null for a URL submission), its name and every field. */
export function submissionFingerprint(fileSha256: string | null, fields: Readonly<Record<string, unknown>>): string {
  const sorted = Object.keys(fields)
    .sort()
    .map((name) => [name, fields[name]]);
  return createHash('sha256').update(JSON.stringify({ file: fileSha256, fields: sorted })).digest('hex');
}

/** Frees the key of a request that is about to fail, before the answer goes out, so an immediate retry may use it. */
export async function releaseIdempotencyKey(res: Response, store: IdempotencyStore): Promise<void> {
  const held = res.locals.idempotency;
  if (held?.claim.kind === 'owner') {
    await store.abandon(held.scope, held.key);
  }
}

export function idempotencyGate(options: {
  store: IdempotencyStore;
  clock: Clock;
  onError: (res: Response, error: unknown) => void;
}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    let key: string | null;
    try {
      key = parseIdempotencyKey(req.headers['idempotency-key']);
    } catch (error) {
      res.setHeader('Connection', 'close');
      options.onError(res, error);
      return;
    }
    if (key === null) {
      next();
      return;
    }
    const scope = res.locals.caller?.scope ?? '';
    const ownedKey = key;
    options.store.claim(scope, ownedKey, options.clock.now()).then(
      (claim) => {
        if (claim.kind === 'in_flight') {
          // The body is not read: close rather than drain an upload we refuse.
          res.setHeader('Connection', 'close');
          options.onError(res, new AppError('idempotency_key_in_use', 'A request with this Idempotency-Key is still being handled; retry once it has been answered.'));
          return;
        }
        res.locals.idempotency = { scope, key: ownedKey, claim };
        if (claim.kind === 'owner') {
          // The claim lives as long as this request does (an upload may take longer than one lease).
          const renewal = setInterval(() => {
            void options.store.renew(scope, ownedKey, options.clock.now()).catch(() => undefined);
          }, IN_FLIGHT_LEASE_MS / 3);
          // Whatever happens next, a key whose request made no job is freed (completed keys are kept).
          res.on('close', () => {
            clearInterval(renewal);
            void options.store.abandon(scope, ownedKey).catch(() => undefined);
          });
        }
        next();
      },
      (error: unknown) => options.onError(res, error),
    );
  };
}
