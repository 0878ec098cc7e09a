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
import type { ApiKeyVerifier } from './api-keys.ts';

export interface AuthLocals {
  /** A non-secret tag of the caller's key ('' when keys are off). */
  apiKeyScope?: string;
}

export function unauthorizedError(): AppError {
  return new AppError('unauthorized', `Send a valid API key in the ${API_KEY_HEADER} header.`);
}

export function requireApiKey(options: {
  verifier: ApiKeyVerifier;
  api: OpenAPIBackend;
  onError: (res: Response, error: unknown) => void;
}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const scope = options.verifier.verify(req.headers[API_KEY_HEADER]);
    if (scope !== null) {
      res.locals.apiKeyScope = scope;
      next();
      return;
    }
    const operation = options.api.matchOperation({ method: req.method, path: req.path, headers: {} });
    if (operation && Array.isArray(operation.security) && operation.security.length === 0) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'ApiKey header="X-API-Key"');
    if (!req.complete) {
      res.setHeader('Connection', 'close');
    }
    options.onError(res, unauthorizedError());
  };
}
