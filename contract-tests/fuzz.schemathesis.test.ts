import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';

import { loadSpec } from '../src/http/app.ts';
import { METHODS } from '../src/http/served-spec.ts';
import { requireTool, runCommand } from './support/cli.ts';
import { requireModel, tempDir } from './support/harness.ts';
import { startServerProcess } from './support/server-process.ts';

/** schemathesis 4.32 (PyPI); .ci/run installs it in the CI virtual environment. */
const SCHEMATHESIS = process.env.CESAR_TEST_SCHEMATHESIS ?? (process.env.CESAR_TEST_PYTHON ? path.join(path.dirname(process.env.CESAR_TEST_PYTHON), 'st') : 'st');
const CONFIG = path.join(import.meta.dirname, 'fuzz', 'schemathesis.toml');
/** Examples per operation and phase: enough to hit every rule the server enforces, a minute or two per run. */
const EXAMPLES = process.env.CESAR_TEST_FUZZ_EXAMPLES ?? '40';
/** A fixed seed keeps CI reproducible; set CESAR_TEST_FUZZ_SEED to explore further. */
const SEED = process.env.CESAR_TEST_FUZZ_SEED ?? '11';
const KEY = `ck_${randomUUID().replaceAll('-', '')}`;

interface FuzzRun {
  code: number | null;
  output: string;
}

async function fuzz(t: TestContext, env: Record<string, string>, headers: string[]): Promise<FuzzRun | null> {
  if (!requireModel(t)) {
    return null;
  }
  const probe = await runCommand(SCHEMATHESIS, ['--version']).catch(() => null);
  if (!requireTool(t, `schemathesis at ${SCHEMATHESIS}`, probe?.code === 0 && /4\.32\./.test(probe.stdout), "pip install 'schemathesis==4.32.*', and set CESAR_TEST_SCHEMATHESIS to its st")) {
    return null;
  }
  const dataDir = await tempDir('cesar-fuzz-');
  const server = await startServerProcess(dataDir, env);
  t.after(async () => {
    server.signal('SIGTERM');
    await server.exited;
    await rm(dataDir, { recursive: true, force: true });
  });
  const result = await runCommand(SCHEMATHESIS, [
    '--config-file',
    CONFIG,
    '--no-color',
    'run',
    `${server.client.baseUrl}/openapi.json`,
    '--checks',
    'all',
    '--max-examples',
    EXAMPLES,
    '--seed',
    SEED,
    // One worker: schemathesis' generator hits a CPython 3.11 bug ("AST constructor recursion depth mismatch",
    // an internal error of the tool, not an answer of the server) when several threads build strategies at once.
    '--workers',
    '1',
    '--request-timeout',
    '60',
    ...headers.flatMap((header) => ['--header', header]),
    // Its cache of crashes goes in the working directory: the server's temporary one, not the repository.
  ], { cwd: dataDir });
  const output = result.stdout + result.stderr;
  // The figures, for the record: operations, test cases, failures.
  process.stderr.write(`\nschemathesis (${t.name}): ${/Tested: \d+/.exec(output)?.[0] ?? '?'} operations; ${/\d+ generated[^\n]*/.exec(output)?.[0] ?? '?'}\n`);
  return { code: result.code, output };
}

/** How many operations the spec has (webhooks and callbacks are not the server's to answer). */
function operationCount(): number {
  const methods = new Set<string>(METHODS);
  return Object.values(loadSpec().paths ?? {}).reduce((count, item) => count + Object.keys(item ?? {}).filter((key) => methods.has(key)).length, 0);
}

function assertClean(run: FuzzRun): void {
  assert.doesNotMatch(run.output, /Runtime Error|Errors:/, `schemathesis hit an error:\n${run.output.slice(-8000)}`);
  const count = operationCount();
  assert.match(run.output, new RegExp(`Selected: ${count}/${count}\\s+Tested: ${count}\\b`), `schemathesis did not test every operation:\n${run.output.slice(-3000)}`);
  assert.equal(run.code, 0, `schemathesis found failures:\n${run.output.slice(-12000)}`);
}

describe('schemathesis over every operation of the served spec', () => {
  test('without API keys: 0 failures', async (t) => {
    const run = await fuzz(t, {}, []);
    if (run) {
      assertClean(run);
    }
  });

  test('with an API key configured and sent: 0 failures', async (t) => {
    const run = await fuzz(t, { CESAR_API_KEYS: KEY }, [`X-API-Key: ${KEY}`]);
    if (run) {
      assertClean(run);
    }
  });
});
