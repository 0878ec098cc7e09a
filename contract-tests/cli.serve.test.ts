import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { contractClient } from './support/contract.ts';
import type { ContractClient } from './support/contract.ts';
import { runProcess, spawnCesar } from './support/cli.ts';
import type { CliResult } from './support/cli.ts';
import { modelsDir, requireModel, tempDir, TEST_MODEL } from './support/harness.ts';
import { startReleaseMirror, startSentinel } from './support/release-mirror.ts';

interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

interface HealthBody {
  status: string;
  checks: { name: string; ok: boolean; detail: string }[];
  download?: { model: string; url: string; received_bytes: number; total_bytes: number | null; percent: number | null };
}

interface RunningServe {
  child: ChildProcess;
  lines: LogLine[];
  finished: Promise<CliResult>;
  /** Waits for the first log line (from now or before) that `match` accepts. */
  waitForLine(match: (line: LogLine) => boolean): Promise<LogLine>;
  client(): ContractClient;
}

/** `cesar serve ARGS` in `cwd`, its JSON log lines collected as they come. */
function serve(t: TestContext, args: readonly string[], cwd: string, env: Record<string, string> = {}): RunningServe {
  const child = spawnCesar(['serve', '--port', '0', ...args], { cwd, env });
  const finished = runProcess(child);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  });
  const lines: LogLine[] = [];
  let buffered = '';
  child.stdout?.on('data', (text: string) => {
    buffered += text;
    const complete = buffered.split('\n');
    buffered = complete.pop() ?? '';
    lines.push(...complete.map((line) => JSON.parse(line) as LogLine));
  });
  const waitForLine = async (match: (line: LogLine) => boolean): Promise<LogLine> => {
    for (;;) {
      const found = lines.find(match);
      if (found) {
        return found;
      }
      if (child.exitCode !== null) {
        assert.fail(`cesar serve exited ${child.exitCode}: ${(await finished).stderr}`);
      }
      await Promise.race([once(child.stdout ?? child, 'data'), finished]);
    }
  };
  return {
    child,
    lines,
    finished,
    waitForLine,
    client: () => {
      const listening = lines.find((line) => line.msg === 'cesar listening');
      assert.ok(listening, 'cesar serve is not listening yet');
      return contractClient(String(listening.url));
    },
  };
}

async function stop(server: RunningServe): Promise<void> {
  server.child.kill('SIGTERM');
  const result = await server.finished;
  assert.equal(result.code, 0, result.stderr);
}

describe('cesar serve', () => {
  test('without its default model it starts, reports not ready, logs the one command that fixes it, and stops on SIGTERM', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    await mkdir(path.join(cwd, 'empty-models'));
    // Precedence: the flag beats the environment, which beats .env, which beats the default.
    await writeFile(path.join(cwd, '.env'), 'CESAR_DEFAULT_MODEL=from-dotenv\nCESAR_DATA_DIR=dotenv-data\nCESAR_MAX_WORKERS=1\n');
    const server = serve(t, ['--models-dir', 'empty-models', '--default-model', 'small.en'], cwd, { CESAR_DEFAULT_MODEL: 'from-env', CESAR_PORT: '1' });
    const warning = await server.waitForLine((line) => line.level === 'warn');
    const listening = server.lines.find((line) => line.msg === 'cesar listening');
    assert.ok(listening, `no "cesar listening" line in ${JSON.stringify(server.lines)}`);
    assert.equal(listening.data_dir, path.join(cwd, 'dotenv-data'));
    assert.ok(existsSync(path.join(cwd, 'dotenv-data', 'cesar.db')));
    assert.equal(warning.fix, `npx cesar models download small.en --models-dir ${path.join(cwd, 'empty-models')}`);
    assert.match(warning.msg, /not ready: the default model small\.en and the VAD model silero_vad\.onnx missing; install with: npx cesar models download small\.en/);

    const health = await server.client().get('/health');
    assert.equal(health.status, 503);
    assert.equal((health.json as HealthBody).status, 'not_ready');

    await stop(server);
    assert.ok(server.lines.some((line) => line.msg === 'stopped'));
  });

  test('on a first run with an empty models folder it installs its default model and the VAD model itself: /health goes from 503 with the download\'s progress to 200', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const source = modelsDir();
    assert.ok(source);
    const mirror = await startReleaseMirror(source);
    const cwd = await tempDir();
    t.after(async () => {
      await mirror.close();
      await rm(cwd, { recursive: true, force: true });
    });
    // The gated archive stops halfway until the test has seen the download in progress.
    const server = serve(t, ['--models-dir', 'models', '--default-model', TEST_MODEL], cwd, { CESAR_OFFLINE: 'false', CESAR_MODELS_BASE_URL: `${mirror.baseUrl}/gated/` });
    await server.waitForLine((line) => line.msg === 'cesar listening');
    const client = server.client();

    let downloading: HealthBody | null = null;
    while (downloading === null) {
      const health = await client.get('/health');
      const body = health.json as HealthBody;
      if (body.download && body.download.received_bytes > 0) {
        assert.equal(health.status, 503);
        downloading = body;
      } else {
        assert.equal(health.status, 503, 'ready before the model was downloaded');
        await sleep(50);
      }
    }
    assert.equal(downloading.status, 'not_ready');
    assert.equal(downloading.download?.model, TEST_MODEL);
    assert.equal(downloading.download?.url, `${mirror.baseUrl}/gated/sherpa-onnx-whisper-${TEST_MODEL}.tar.bz2`);
    assert.ok((downloading.download?.total_bytes ?? 0) > 1_000_000);
    assert.ok((downloading.download?.percent ?? 0) > 0 && (downloading.download?.percent ?? 100) < 100, JSON.stringify(downloading.download));
    assert.match(downloading.checks.find((check) => check.name === 'default_model')?.detail ?? '', /^downloading http:\/\/127\.0\.0\.1:\d+\/gated\//);
    await server.waitForLine((line) => line.msg === 'downloading' && line.model === TEST_MODEL && typeof line.percent === 'number');

    mirror.releaseGate();
    for (;;) {
      const health = await client.get('/health');
      if (health.status === 200) {
        assert.equal((health.json as HealthBody).status, 'ready');
        assert.equal((health.json as HealthBody).download, undefined);
        break;
      }
      await sleep(100);
    }
    assert.deepEqual((await readdir(path.join(cwd, 'models'))).sort(), [`sherpa-onnx-whisper-${TEST_MODEL}`, 'silero_vad.onnx']);
    assert.ok(server.lines.some((line) => line.msg === `installed ${TEST_MODEL}`));
    assert.ok(server.lines.some((line) => line.msg === 'installed silero_vad'));
    assert.deepEqual(server.lines.filter((line) => line.level === 'warn' || line.level === 'error'), []);
    await stop(server);
  });

  test('--offline and CESAR_OFFLINE=true never connect to the release site; without them the same site is called', async (t) => {
    const sentinel = await startSentinel();
    const cwd = await tempDir();
    t.after(async () => {
      await sentinel.close();
      await rm(cwd, { recursive: true, force: true });
    });
    const variants: [string, string[], Record<string, string>][] = [
      ['--offline', ['--offline'], { CESAR_OFFLINE: 'false' }],
      ['CESAR_OFFLINE=true', [], { CESAR_OFFLINE: 'true' }],
    ];
    for (const [name, flags, env] of variants) {
      const server = serve(t, ['--models-dir', 'models', '--data-dir', `data-${name}`, '--default-model', TEST_MODEL, ...flags], cwd, { ...env, CESAR_MODELS_BASE_URL: sentinel.baseUrl });
      const warning = await server.waitForLine((line) => line.level === 'warn');
      assert.match(warning.msg, /^not ready: .*; install with: npx cesar models download/, name);
      const health = await server.client().get('/health');
      assert.equal(health.status, 503, name);
      assert.equal((health.json as HealthBody).download, undefined, name);
      // Time enough for any download to have started.
      await sleep(500);
      assert.equal(sentinel.connections, 0, `${name}: the release site was contacted`);
      await stop(server);
    }

    // The control: online, the same configuration calls the site (which has no such file) and then says so.
    const online = serve(t, ['--models-dir', 'models', '--data-dir', 'data-online', '--default-model', TEST_MODEL], cwd, { CESAR_OFFLINE: 'false', CESAR_MODELS_BASE_URL: sentinel.baseUrl });
    const failed = await online.waitForLine((line) => line.level === 'error');
    assert.match(failed.msg, new RegExp(`installing ${TEST_MODEL.replace('.', '\\.')} failed: .*sherpa-onnx-whisper-${TEST_MODEL.replace('.', '\\.')}\\.tar\\.bz2 answered 404`));
    await online.waitForLine((line) => line.level === 'warn');
    assert.ok(sentinel.connections > 0);
    await stop(online);
  });

  test('an unreachable release site ends in the clear message: what to install by hand, and the one command', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    // A port nobody listens on: connection refused, as on a machine without network.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const port = typeof address === 'object' && address ? address.port : 9;
    const server = serve(t, ['--models-dir', 'models', '--default-model', 'base'], cwd, { CESAR_OFFLINE: 'false', CESAR_MODELS_BASE_URL: `http://127.0.0.1:${port}/asr-models/` });
    const failed = await server.waitForLine((line) => line.level === 'error');
    const models = path.join(cwd, 'models');
    assert.match(failed.msg, /^installing base failed: cannot reach http:\/\/127\.0\.0\.1:\d+\/asr-models\/sherpa-onnx-whisper-base\.tar\.bz2 \(ECONNREFUSED\); nothing was installed\. Are you offline\? To install it by hand/);
    assert.ok(failed.msg.includes(path.join(models, 'sherpa-onnx-whisper-base', 'base-encoder.int8.onnx')), failed.msg);
    const warning = await server.waitForLine((line) => line.level === 'warn');
    assert.equal(warning.fix, `npx cesar models download base --models-dir ${models}`);
    const health = await server.client().get('/health');
    assert.equal(health.status, 503);
    assert.deepEqual(await readdir(models).catch(() => []), []);
    await stop(server);
  });
});
