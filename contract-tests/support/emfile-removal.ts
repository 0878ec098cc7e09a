/**
 * @module contract-tests/support/emfile-removal
 * Run as its own process under a low `ulimit -n`: fills every free file descriptor, then removes two job
 * folders, one with a plain `rm` and one with `removePath`, and frees the descriptors 300 ms later, as a server
 * does when stalled connections go away. Prints what became of each as one JSON line.
 */
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

import { removePath } from '../../src/jobs/remove-path.ts';

const root = process.argv[2] ?? '';
const folders = ['plain', 'retrying'].map((name) => path.join(root, name));
for (const folder of folders) {
  await mkdir(path.join(folder, 'segments'), { recursive: true });
  await writeFile(path.join(folder, 'audio.pcm'), 'pcm');
  await writeFile(path.join(folder, 'segments', '0001.json'), '{}');
}
const hoard: FileHandle[] = [];
for (;;) {
  try {
    hoard.push(await open('/dev/null', 'r'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EMFILE') {
      break;
    }
    throw error;
  }
}
const outcome = async (removal: Promise<void>): Promise<string> =>
  removal.then(
    () => 'removed',
    (error: NodeJS.ErrnoException) => error.code ?? String(error),
  );
const plain = outcome(rm(folders[0] ?? '', { recursive: true, force: true }));
const retrying = outcome(removePath(folders[1] ?? ''));
setTimeout(() => void Promise.all(hoard.map((handle) => handle.close())), 300);
const result = { plain: await plain, retrying: await retrying, plainLeft: existsSync(folders[0] ?? ''), retryingLeft: existsSync(folders[1] ?? '') };
process.stdout.write(`${JSON.stringify(result)}\n`);
