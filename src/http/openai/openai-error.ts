/**
 * @module http/openai/openai-error
 * Errors on `/v1/*` in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the status codes
 * OpenAI uses, because OpenAI's clients parse them; every other path answers problem+json (`http/problem.ts`).
 */
import type { Response } from 'express';

import { AppError, isAppError } from '../../errors.ts';
import type { ErrorCode } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { Schemas } from '../operation-types.ts';

export const OPENAI_PATH_PREFIX = '/v1/';

export function isOpenAIPath(path: string): boolean {
  return path.startsWith(OPENAI_PATH_PREFIX);
}

/** OpenAI's own codes and statuses where it has them; otherwise Cesar's code, 400 or 500. */
const OPENAI_CODES: Partial<Record<ErrorCode, { status: number; code: string }>> = {
  unauthorized: { status: 401, code: 'invalid_api_key' },
  model_not_installed: { status: 404, code: 'model_not_found' },
};

/** The request field an error is about: given by the thrower, or the first field a validation error names. */
const FILE_ERRORS: ReadonlySet<ErrorCode> = new Set(['missing_file', 'empty_file', 'too_many_files', 'upload_too_large', 'undecodable_media', 'no_audio_stream', 'empty_audio', 'media_too_long']);

function paramOf(error: AppError): string | null {
  if (typeof error.extensions.param === 'string') {
    return error.extensions.param;
  }
  if (FILE_ERRORS.has(error.code)) {
    return 'file';
  }
  const errors = error.extensions.errors;
  const location = Array.isArray(errors) ? (errors[0] as { location?: unknown } | undefined)?.location : undefined;
  if (typeof location !== 'string') {
    return null;
  }
  const field = location.replace(/^(requestBody|body)\.?/, '').split('.')[0] ?? '';
  return field === '' ? null : field;
}

export function openAIError(error: AppError): { status: number; body: Schemas['OpenAIErrorResponse'] } {
  const known = OPENAI_CODES[error.code];
  const status = known?.status ?? (error.status === 413 ? 413 : error.status === 503 ? 503 : error.status >= 500 ? 500 : 400);
  return {
    status,
    body: {
      error: {
        message: error.message,
        type: status >= 500 ? 'server_error' : 'invalid_request_error',
        param: paramOf(error),
        code: known?.code ?? error.code,
      },
    },
  };
}

export function sendOpenAIError(res: Response, error: unknown, logger: Logger, instance?: string): void {
  const appError = isAppError(error) ? error : new AppError('internal_error', 'An unexpected error occurred.');
  if (!isAppError(error)) {
    logger.error('request failed unexpectedly', { error, instance });
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, body } = openAIError(appError);
  res.status(status).json(body);
}
