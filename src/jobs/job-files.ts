/**
 * @module jobs/job-files
 * Where a job's files live under the data directory: its upload (kept until no attempt will read it again) and
 * its work directory (the normalized audio of the attempt running now).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';

export function jobPaths(dataDir: string, id: string): { upload: string; workDir: string; audio: string } {
  const workDir = path.join(dataDir, 'work', id);
  return { upload: path.join(dataDir, 'uploads', id), workDir, audio: path.join(workDir, 'audio.pcm') };
}

/** Removes a job's upload and work directory, whichever of them exist. */
export async function removeJobFiles(dataDir: string, id: string): Promise<void> {
  const paths = jobPaths(dataDir, id);
  await rm(paths.upload, { force: true });
  await rm(paths.workDir, { recursive: true, force: true });
}
