/**
 * @module errors
 * The closed registry of error codes. Every failure a client can see, in an HTTP answer or on a failed job,
 * carries one of these codes; `openapi.yaml` lists the same set in `ErrorCode` (a test keeps the two equal).
 */
import type { components } from '../generated/openapi.d.ts';

export type ErrorCode = components['schemas']['ErrorCode'];

interface ErrorSpec {
  /** HTTP status when the error answers a request. */
  readonly status: number;
  readonly title: string;
  /** For job failures: whether another attempt may succeed. */
  readonly retryable: boolean;
}

export const ERROR_CODES = {
  invalid_request: { status: 400, title: 'The request is invalid', retryable: false },
  unknown_field: { status: 400, title: 'The form has a field this operation does not take', retryable: false },
  missing_file: { status: 400, title: 'The form has no file field', retryable: false },
  too_many_files: { status: 400, title: 'The form has more than one file', retryable: false },
  empty_file: { status: 400, title: 'The uploaded file is empty', retryable: false },
  upload_too_large: { status: 413, title: 'The upload is larger than the limit', retryable: false },
  request_timeout: { status: 408, title: 'The client stopped sending the request body', retryable: false },
  unsupported_content_type: { status: 415, title: 'The request body has an unsupported media type', retryable: false },
  model_not_installed: { status: 422, title: 'The model is not installed', retryable: false },
  unsupported_language: { status: 422, title: 'The model does not support this language', retryable: false },
  unsupported_task: { status: 422, title: 'The model does not support this task', retryable: false },
  word_timestamps_unsupported: { status: 422, title: 'The model cannot give word timestamps', retryable: false },
  not_acceptable: { status: 406, title: 'The transcript cannot be rendered in an acceptable format', retryable: false },
  job_not_found: { status: 404, title: 'No job has this id', retryable: false },
  job_not_completed: { status: 409, title: 'The job is not completed', retryable: false },
  invalid_cursor: { status: 400, title: 'The cursor is not valid', retryable: false },
  undecodable_media: { status: 422, title: 'The file is not audio or video that can be decoded', retryable: false },
  no_audio_stream: { status: 422, title: 'The file has no audio stream', retryable: false },
  empty_audio: { status: 422, title: 'The audio stream has no samples', retryable: false },
  media_too_long: { status: 422, title: 'The audio is longer than the limit', retryable: false },
  url_forbidden: { status: 422, title: 'The URL may not be fetched', retryable: false },
  download_failed: { status: 502, title: 'Downloading the URL failed', retryable: false },
  download_too_large: { status: 413, title: 'The download is larger than the limit', retryable: false },
  transcription_failed: { status: 500, title: 'The speech engine failed', retryable: true },
  worker_crashed: { status: 500, title: 'The worker process died while transcribing', retryable: true },
  canceled: { status: 409, title: 'The job was canceled', retryable: false },
  internal_error: { status: 500, title: 'Internal error', retryable: true },
  job_finished: { status: 409, title: 'The job has already finished', retryable: false },
  queue_full: { status: 503, title: 'The queue is full; try again later', retryable: false },
  too_many_uploads: { status: 503, title: 'Too many uploads are in progress; try again later', retryable: false },
  unauthorized: { status: 401, title: 'A valid API key is needed', retryable: false },
  idempotency_key_mismatch: { status: 422, title: 'The Idempotency-Key was used with another payload', retryable: false },
  idempotency_key_in_use: { status: 409, title: 'A request with this Idempotency-Key is still being handled', retryable: false },
  webhook_url_not_allowed: { status: 422, title: 'The webhook URL is not allowed', retryable: false },
  webhooks_not_configured: { status: 422, title: 'The server has no webhook signing secret configured', retryable: false },
  delivery_not_found: { status: 404, title: 'The job has no delivery with this id', retryable: false },
  storage_unavailable: { status: 503, title: 'The storage holding the audio cannot be reached; try again later', retryable: true },
} as const satisfies Record<ErrorCode, ErrorSpec>;

/** An error with a registered code; rendered to problem+json in `src/http/problem.ts` only. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra members of the problem document (validation errors, installed models...). */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, detail?: string, extensions: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(detail ?? ERROR_CODES[code].title, options);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.extensions = extensions;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
