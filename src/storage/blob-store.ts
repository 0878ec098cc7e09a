/**
 * @module storage/blob-store
 * Where uploads live: one interface, two implementations. Local folders under the data directory
 * (`local-blob-store.ts`, the embedded default) or an S3-compatible bucket (`s3-blob-store.ts`) shared by API and
 * worker nodes on many machines. Keys are relative, slash-separated (`uploads/<job id>`); the jobs row keeps its
 * upload's key in `input_path`.
 */
import type { Readable } from 'node:stream';

import { AppError } from '../errors.ts';

/** A stored object, for orphan sweeps. */
export interface BlobEntry {
  key: string;
  /** When it was last written (for an S3 multipart upload still open: when it was started). */
  lastModifiedMs: number;
}

export interface BlobStore {
  /** For logs and the README: `local folders in <dir>` or `s3://bucket/prefix`. */
  readonly location: string;
  /**
   * Streams `body` under `key`; never holds it whole in memory. Fails with `BlobTooLargeError` past `maxBytes`
   * (inclusive), with the signal's reason when aborted, with `storage_unavailable` when the store cannot be
   * reached; on any failure nothing is left under `key`.
   */
  put(key: string, body: Readable, options: { maxBytes: number; signal: AbortSignal }): Promise<{ sizeBytes: number }>;
  /** Writes the object to the local `file` (replacing it). Fails with `BlobNotFoundError` or `storage_unavailable`. */
  download(key: string, file: string, signal: AbortSignal): Promise<void>;
  /** A path to read the object in place when it is a local file, so a worker need not copy it; null otherwise. */
  localPath(key: string): string | null;
  /** Removes the object (and, on S3, any unfinished multipart upload of it); absent is fine. */
  remove(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, unfinished uploads included. */
  list(prefix: string): AsyncIterable<BlobEntry>;
  close(): Promise<void>;
}

/** Thrown by `put` once the body passes its byte limit. */
export class BlobTooLargeError extends Error {
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super(`the object is larger than ${maxBytes} bytes`);
    this.name = 'BlobTooLargeError';
    this.maxBytes = maxBytes;
  }
}

export class BlobNotFoundError extends Error {
  constructor(key: string) {
    super(`no object has the key ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

/** The retryable error for a store that does not answer (down, unreachable, refusing): jobs retry, uploads get 503. */
export function storageUnavailable(action: string, cause: unknown): AppError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new AppError('storage_unavailable', `The storage could not ${action}: ${reason}`, {}, { cause });
}

/** Where a job's upload is stored. */
export function uploadKey(jobId: string): string {
  return `uploads/${jobId}`;
}

export const UPLOADS_PREFIX = 'uploads/';
