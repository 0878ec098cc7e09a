/**
 * @module jobs/job-files
 * Where a job's files live: its upload in the blob store (kept until no attempt will read it again) and its work
 * directory under the data directory of the node running it (the input fetched for ffmpeg and the normalized
 * audio of the attempt running now).
 */
import path from 'node:path';

import type { BlobStore } from '../storage/blob-store.ts';
import { uploadKey } from '../storage/blob-store.ts';
import { removePath } from './remove-path.ts';

/** `upload` is where the local store keeps the upload (`uploads/<id>` under the data directory). */
export function jobPaths(dataDir: string, id: string): { upload: string; workDir: string; input: string; audio: string } {
  const workDir = path.join(dataDir, 'work', id);
  return { upload: path.join(dataDir, uploadKey(id)), workDir, input: path.join(workDir, 'input'), audio: path.join(workDir, 'audio.pcm') };
}

/**
 * Removes a job's work directory and its upload, whichever exist (retried when out of file descriptors). Throws
 * `storage_unavailable` when the store cannot be reached: the orphan sweep removes the upload later.
 */
export async function removeJobFiles(dataDir: string, blobs: BlobStore, id: string): Promise<void> {
  await removePath(jobPaths(dataDir, id).workDir);
  await blobs.remove(uploadKey(id));
}
