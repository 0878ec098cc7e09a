/**
 * @module jobs/remove-path
 * Deletes a job's file or folder so that it does not stay behind when the process is short of file descriptors:
 * removing a folder opens it, and at the open-file limit that fails with EMFILE (a file being closed elsewhere
 * can give EBUSY). Node retries those errors itself with a linear backoff (here about 5.5 s in all); what still
 * fails is left to the retention sweep, which removes files no job needs.
 */
import { rm } from 'node:fs/promises';

const RETRIES = 10;
const RETRY_DELAY_MS = 100;

/** Removes `target` (a file or a folder tree); absent is fine. */
export function removePath(target: string): Promise<void> {
  return rm(target, { recursive: true, force: true, maxRetries: RETRIES, retryDelay: RETRY_DELAY_MS });
}
