/**
 * @module http/auth
 * Checks the API key before anything else runs, the multipart upload included: an unauthenticated client must
 * not be able to make the server store a file. Operations whose spec says `security: []` (health) and the
 * documentation routes, mounted before this, stay open.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { OpenAPIBackend } from 'openapi-backend';

import { AppError } from '../errors.ts';
import { API_KEY_HEADER } from './api-keys.ts';
import type { ApiKeyVerifier, Caller } from './api-keys.ts';
import { isOpenAIPath } from './openai/openai-error.ts';
import { routedMethod } from './operation-types.ts';

export interface AuthLocals {
  /** Set once the key was checked (or keys are off); absent on an open operation called without a valid key. */
  caller?: Caller;
}

export function unauthorizedError(path = ''): AppError {
  return isOpenAIPath(path)
    ? new AppError('unauthorized', 'Send a valid API key as `Authorization: Bearer <key>` or in the X-API-Key header.')
    : new AppError('unauthorized', `Send a valid API key in the ${API_KEY_HEADER} header.`);
}

/** The key of `Authorization: Bearer <key>`, as OpenAI's SDKs send it. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return match?.[1];
}

/**
 * The caller, or null without a valid key. `/v1/*` (the OpenAI-compatible operations) also takes the key as a
 * bearer token.
 */
export function verifyRequestKey(verifier: ApiKeyVerifier, path: string, headers: Readonly<Record<string, string | string[] | undefined>>): Caller | null {
  const caller = verifier.verify(headers[API_KEY_HEADER]);
  if (caller !== null || !isOpenAIPath(path)) {
    return caller;
  }
  const authorization = headers.authorization;
  return verifier.verify(bearerToken(typeof authorization === 'string' ? authorization : undefined));
}

export function requireApiKey(options: {
  verifier: ApiKeyVerifier;
  api: OpenAPIBackend;
  onError: (res: Response, error: unknown) => void;
}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const caller = verifyRequestKey(options.verifier, req.path, req.headers);
    if (caller !== null) {
      res.locals.caller = caller;
      next();
      return;
    }
    const operation = options.api.matchOperation({ method: routedMethod(req.method), path: req.path, headers: {} });
    if (operation && Array.isArray(operation.security) && operation.security.length === 0) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', isOpenAIPath(req.path) ? 'Bearer, ApiKey header="X-API-Key"' : 'ApiKey header="X-API-Key"');
    if (!req.complete) {
      res.setHeader('Connection', 'close');
    }
    options.onError(res, unauthorizedError(req.path));
  };
}
