/**
 * @module http/problem
 * The one place where errors become HTTP answers: RFC 9457 problem documents with a stable `code`.
 */
import type { Response } from 'express';

import { AppError, ERROR_CODES, isAppError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
/** Problem types are relative URIs under the API's own documentation, one per code. */
export const PROBLEM_TYPE_BASE = '/docs/errors#';

export function sendProblem(res: Response, error: unknown, logger: Logger, instance?: string): void {
  const appError = isAppError(error) ? error : new AppError('internal_error', 'An unexpected error occurred.');
  if (!isAppError(error)) {
    logger.error('request failed unexpectedly', { error, instance });
  }
  if (res.headersSent) {
    // A half-sent answer cannot be finished; a whole one (a 408 already sent) stands.
    if (!res.writableEnded) {
      res.destroy();
    }
    return;
  }
  const body: Record<string, unknown> = {
    ...appError.extensions,
    type: `${PROBLEM_TYPE_BASE}${appError.code}`,
    title: ERROR_CODES[appError.code].title,
    status: appError.status,
    detail: appError.message,
    code: appError.code,
  };
  if (instance !== undefined) {
    body.instance = instance;
  }
  res.status(appError.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}
