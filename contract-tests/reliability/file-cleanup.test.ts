/**
 * Cleanup that survives running out of file descriptors (issue 13): with the open-file limit reached, removing a
 * job's work folder failed with EMFILE and the folder stayed for good. Removal is now retried, and what still
 * stays is removed by the next retention sweep.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { LOCAL_STORAGE } from '../support/backends.ts';
import { startServer, tempDir } from '../support/harness.ts';

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, '..', '..');
const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');

test('removing a job folder while every file descriptor is taken waits for one instead of giving up', async () => {
  const dir = await tempDir('cesar-emfile-');
  try {
    const { stdout } = await run('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" contract-tests/support/emfile-removal.ts "$1"', NODE, dir], { cwd: ROOT });
    const result = JSON.parse(stdout) as { plain: string; retrying: string; plainLeft: boolean; retryingLeft: boolean };
    // The plain removal shows the condition is real: it fails and leaves the folder.
    assert.equal(result.plain, 'EMFILE');
    assert.equal(result.plainLeft, true);
    assert.equal(result.retrying, 'removed');
    assert.equal(result.retryingLeft, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the retention sweep removes uploads and work folders that no job needs once they are old enough', async () => {
  // Files planted in the data directory; the bucket's sweep is storage.s3's "an API node killed mid-upload" test.
  const server = await startServer(LOCAL_STORAGE);
  try {
    const hourAgo = new Date(Date.now() - 3_600_000);
    const leftUpload = path.join(server.dataDir, 'uploads', randomUUID());
    const leftWork = path.join(server.dataDir, 'work', randomUUID());
    const freshUpload = path.join(server.dataDir, 'uploads', randomUUID());
    await writeFile(leftUpload, 'partial');
    await mkdir(leftWork);
    await writeFile(path.join(leftWork, 'audio.pcm'), 'pcm');
    await writeFile(freshUpload, 'being received');
    await utimes(leftUpload, hourAgo, hourAgo);
    await utimes(leftWork, hourAgo, hourAgo);
    await server.service.retention.sweep();
    assert.equal(existsSync(leftUpload), false, 'an old upload without a job is removed');
    assert.equal(existsSync(leftWork), false, 'an old work folder without a running job is removed');
    assert.equal(existsSync(freshUpload), true, 'an upload that may still be arriving is kept');
  } finally {
    await server.close();
  }
});
