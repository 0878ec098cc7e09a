/**
 * @module cli/settings
 * The configuration of a command: flags override the environment, the environment overrides a `.env` file in
 * the working directory, and that overrides the defaults of `config.ts`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';

import { ConfigError, loadConfig } from '../config.ts';
import type { Config } from '../config.ts';
import { CliError, EXIT } from './exit-codes.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** The variables of `cwd/.env`, or none when there is no such file. */
export function readDotEnv(cwd: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path.join(cwd, '.env'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return {};
    }
    throw error;
  }
  return parseEnv(text) as Record<string, string>;
}

/** Merges the sources in precedence order; `flags` maps variable names to the values given on the command line. */
export function mergedEnv(env: Env, cwd: string, flags: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const merged: Record<string, string> = { ...readDotEnv(cwd) };
  for (const source of [env, flags]) {
    for (const [name, value] of Object.entries(source)) {
      if (value !== undefined) {
        merged[name] = value;
      }
    }
  }
  return merged;
}

/** The service configuration for a command, or a usage error naming the variable (and the flag that sets it). */
export function commandConfig(env: Env, cwd: string, flags: Readonly<Record<string, string | undefined>>): Config {
  try {
    return loadConfig(mergedEnv(env, cwd, flags), cwd);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new CliError(`invalid configuration: ${error.message}`, EXIT.usage);
    }
    throw error;
  }
}
