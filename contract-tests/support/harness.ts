/**
 * @module contract-tests/support/harness
 * Starts a real Cesar service for a test: its own temporary data directory, port 0, the models directory of
 * support/test-models.ts. Tests that need a model call `requireModel()`, which skips them loudly when it is missing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { loadConfig } from '../../src/config.ts';
import type { Clock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import type { Service } from '../../src/service.ts';
import { createService } from '../../src/service.ts';
import { backendEnv } from './backends.ts';
import { contractClient, noteSkipped } from './contract.ts';
import type { ContractClient } from './contract.ts';
import { holdsModel, MULTILINGUAL_MODEL, TEST_MODEL, testModelsSearchDir } from './test-models.ts';

export const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
export { MULTILINGUAL_MODEL, TEST_MODEL };

/** The models directory the tests use (CESAR_MODELS_DIR, else ./models), or null when it lacks the test model. */
export function modelsDir(): string | null {
  const dir = testModelsSearchDir();
  return holdsModel(dir, TEST_MODEL) ? dir : null;
}

/** Skips the test, and records it for the end-of-run warning, when `model` (default: the test model) is missing. */
export function requireModel(t: TestContext, model: string = TEST_MODEL): boolean {
  const dir = testModelsSearchDir();
  if (holdsModel(dir, TEST_MODEL) && holdsModel(dir, model)) {
    return true;
  }
  noteSkipped(t.fullName);
  const needed = [...new Set([TEST_MODEL, model])].map((name) => `sherpa-onnx-whisper-${name}`).join(', ');
  t.skip(`NO MODEL: the test needs ${needed} and silero_vad.onnx in ${dir}`);
  return false;
}

export interface TestServer {
  client: ContractClient;
  service: Service;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
}

export async function tempDir(prefix = 'cesar-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Starts a service on a fresh data directory; `env` overrides the configuration, `clock` the system clock. */
export async function startServer(env: Record<string, string> = {}, clock?: Clock): Promise<TestServer> {
  // A given CESAR_DATA_DIR is a restart on that directory: `close()` leaves it in place.
  const dataDir = env.CESAR_DATA_DIR ?? (await tempDir());
  const config = loadConfig(
    {
      CESAR_PORT: '0',
      CESAR_DATA_DIR: dataDir,
      CESAR_MODELS_DIR: modelsDir() ?? path.join(dataDir, 'no-models'),
      CESAR_DEFAULT_MODEL: TEST_MODEL,
      CESAR_SHUTDOWN_GRACE_MS: '0',
      ...(await backendEnv(dataDir, env)),
      ...env,
    },
    process.cwd(),
  );
  const logs: string[] = [];
  const logger = createLogger({ sink: { write: (line: string) => logs.push(line) }, format: 'json', level: 'debug' });
  const service = await createService(config, logger, clock);
  const { port } = await service.listen();
  return {
    client: contractClient(`http://127.0.0.1:${port}`),
    service,
    dataDir,
    logs,
    async close() {
      await service.close(0);
      if (env.CESAR_DATA_DIR === undefined) {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

export async function fixture(name: string): Promise<Blob> {
  return new Blob([await readFile(path.join(FIXTURES, name))]);
}

/** A multipart form with `file` and the given fields. */
export async function jobForm(fileName: string, fields: Record<string, string> = {}, contents?: Blob): Promise<FormData> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    form.append(name, value);
  }
  form.append('file', contents ?? (await fixture(fileName)), fileName);
  return form;
}

export interface JobBody {
  id: string;
  status: string;
  progress: number;
  error: { code: string; message: string } | null;
  [key: string]: unknown;
}

/** Polls `GET /jobs/{id}` until the job is in one of `statuses`; the timeout only guards against a hang. */
export async function waitForJob(client: ContractClient, id: string, statuses: readonly string[], timeoutMs = 120_000): Promise<JobBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await client.get(`/jobs/${id}`);
    const job = response.json as JobBody;
    if (statuses.includes(job.status)) {
      return job;
    }
    if (Date.now() > deadline) {
      throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms (waiting for ${statuses.join('|')})`);
    }
    await sleep(100);
  }
}

/** Lower-cased words without punctuation, for comparing transcripts. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}'\s]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);
}
