/**
 * @module main
 * `npm start`: the same as `cesar serve` (src/cli/serve.ts), flags included. The only module with side effects
 * besides the CLI's entry point.
 */
import process from 'node:process';

import { runCli } from './cli/run.ts';

process.exitCode = await runCli(['serve', ...process.argv.slice(2)]);
