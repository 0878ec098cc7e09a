/**
 * @module contract-tests/support/server-process
 * Runs Cesar as a real child process (`node src/main.ts`), as an operator would, so that tests can kill it with
 * signals and start it again on the same data directory. The port is read from the `cesar listening` log line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { backendEnv } from './backends.ts';
import { contractClient } from './contract.ts';
import type { ContractClient } from './contract.ts';
import { modelsDir, TEST_MODEL } from './harness.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface ServerProcess {
  child: ChildProcess;
  client: ContractClient;
  logs: LogLine[];
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** Resolves with the first log line, from now or earlier, for which `match` holds. */
  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine>;
  signal(name: NodeJS.Signals): void;
}

export interface ServerProcessOptions {
  /** Starts the server with this soft and hard limit on open files (`ulimit -n`), as a small host would have. */
  openFilesLimit?: number;
}

/** Starts the server on `dataDir` with the test defaults and `env`; resolves once it listens. */
export async function startServerProcess(dataDir: string, env: Record<string, string> = {}, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const inherited = Object.fromEntries(
    // Not the test runner's context: the child must run as a plain program.
    Object.entries(process.env).filter(([name]) => !name.startsWith('NODE_TEST') && name !== 'NODE_OPTIONS'),
  );
  // `exec` keeps one process: the child's pid is the server's, for /proc/<pid>/fd.
  const [command, args]: [string, string[]] =
    options.openFilesLimit === undefined
      ? [NODE, ['src/main.ts']]
      : ['/bin/sh', ['-c', `ulimit -n ${options.openFilesLimit} && exec "$0" src/main.ts`, NODE]];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: {
      ...inherited,
      CESAR_PORT: '0',
      CESAR_DATA_DIR: dataDir,
      CESAR_MODELS_DIR: modelsDir() ?? path.join(dataDir, 'no-models'),
      CESAR_DEFAULT_MODEL: TEST_MODEL,
      CESAR_LOG_FORMAT: 'json',
      // Never the real release site from a test.
      CESAR_OFFLINE: 'true',
      ...(await backendEnv(dataDir, env)),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  createInterface({ input: child.stdout }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const waitForLog = (match: (line: LogLine) => boolean): Promise<LogLine> => {
    const seen = logs.find(match);
    if (seen) {
      return Promise.resolve(seen);
    }
    return new Promise<LogLine>((resolve, reject) => {
      waiters.push({ match, resolve });
      void exited.then((code) => reject(new Error(`the server exited (${String(code)}) before the log line came: ${stderr.slice(-2000)}`)));
    });
  };
  const listening = await waitForLog((line) => line.msg === 'cesar listening');
  return {
    child,
    client: contractClient(String(listening.url)),
    logs,
    exited,
    waitForLog,
    signal: (name) => {
      child.kill(name);
    },
  };
}

/** SIGKILLs `victim` and waits for `survivor` to start `jobId` again; returns the milliseconds in between. */
export async function killAndAwaitRerun(victim: ServerProcess, survivor: ServerProcess, jobId: string): Promise<number> {
  victim.signal('SIGKILL');
  assert.equal(await victim.exited, 'SIGKILL');
  const killedAt = Date.now();
  await survivor.waitForLog((line) => line.msg === 'job started' && line.job_id === jobId);
  return Date.now() - killedAt;
}
