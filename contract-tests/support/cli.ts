/**
 * @module contract-tests/support/cli
 * Runs the `cesar` command as a child process, the way a user does (bin/cesar.js, then the project's Node), and
 * checks for the external tools that some tests drive (Python, Chromium).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';

export const CESAR_BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'cesar.js');
export const REPO_ROOT = path.join(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of the test process without its CESAR_* settings, plus `env`: each test says what it sets.
 * Offline unless a test says otherwise: a test must never reach the real release site.
 */
export function cliEnv(env: Record<string, string> = {}): Record<string, string> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined && !entry[0].startsWith('CESAR_')),
  );
  return { ...base, CESAR_OFFLINE: 'true', ...env };
}

export function spawnCesar(args: readonly string[], options: { cwd: string; env?: Record<string, string> }): ChildProcess {
  return spawn(process.execPath, [CESAR_BIN, ...args], { cwd: options.cwd, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command to its end; resolves with its exit code and output. */
export function runProcess(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function runCesar(args: readonly string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliResult> {
  return runProcess(spawnCesar(args, options));
}

export function runCommand(command: string, args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runProcess(spawn(command, args, { cwd: options.cwd, env: options.env ?? cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * A test that needs an external tool: in CI a missing tool fails the test (CI installs it, see .ci/run);
 * elsewhere the test is skipped, loudly.
 */
export function requireTool(t: TestContext, what: string, available: boolean, howToInstall: string): boolean {
  if (available) {
    return true;
  }
  if (process.env.CI) {
    throw new Error(`${what} is missing in CI: ${howToInstall}`);
  }
  process.stderr.write(`\n!!! SKIPPED ${t.fullName}: ${what} is missing (${howToInstall})\n`);
  t.skip(`MISSING: ${what} (${howToInstall})`);
  return false;
}
