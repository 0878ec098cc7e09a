import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { contractClient } from './support/contract.ts';
import { runProcess, spawnCesar } from './support/cli.ts';
import { tempDir } from './support/harness.ts';

interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

describe('cesar serve', () => {
  test('without its default model it starts, reports not ready, logs the one command that fixes it, and stops on SIGTERM', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    await mkdir(path.join(cwd, 'empty-models'));
    // Precedence: the flag beats the environment, which beats .env, which beats the default.
    await writeFile(path.join(cwd, '.env'), 'CESAR_DEFAULT_MODEL=from-dotenv\nCESAR_DATA_DIR=dotenv-data\nCESAR_MAX_WORKERS=1\n');
    const child = spawnCesar(['serve', '--port', '0', '--models-dir', 'empty-models', '--default-model', 'small.en'], {
      cwd,
      env: { CESAR_DEFAULT_MODEL: 'from-env', CESAR_PORT: '1' },
    });
    const finished = runProcess(child);
    const lines: LogLine[] = [];
    let buffered = '';
    child.stdout?.on('data', (text: string) => {
      buffered += text;
      const complete = buffered.split('\n');
      buffered = complete.pop() ?? '';
      lines.push(...complete.map((line) => JSON.parse(line) as LogLine));
    });
    while (!lines.some((line) => line.level === 'warn') && child.exitCode === null) {
      await once(child.stdout ?? child, 'data');
    }
    const listening = lines.find((line) => line.msg === 'cesar listening');
    assert.ok(listening, `no "cesar listening" line in ${JSON.stringify(lines)}`);
    assert.equal(listening.data_dir, path.join(cwd, 'dotenv-data'));
    assert.ok(existsSync(path.join(cwd, 'dotenv-data', 'cesar.db')));
    const warning = lines.find((line) => line.level === 'warn');
    assert.equal(warning?.fix, `npx cesar models download small.en --models-dir ${path.join(cwd, 'empty-models')}`);
    assert.match(warning?.msg ?? '', /not ready: the default model small\.en and the VAD model silero_vad\.onnx missing; install with: npx cesar models download small\.en/);

    const client = contractClient(String(listening.url));
    const health = await client.get('/health');
    assert.equal(health.status, 503);
    assert.equal((health.json as { status: string }).status, 'not_ready');

    child.kill('SIGTERM');
    const result = await finished;
    assert.equal(result.code, 0, result.stderr);
    assert.ok(lines.some((line) => line.msg === 'stopped'));
  });
});
