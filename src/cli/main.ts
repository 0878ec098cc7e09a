/**
 * @module cli/main
 * The entry point of the `cesar` command (bin/cesar.js runs it on the project's Node); like src/main.ts, a module
 * with side effects.
 */
import process from 'node:process';

import { runCli } from './run.ts';

// process.exitCode, not exit(): what is still being written to a pipe gets flushed first.
process.exitCode = await runCli(process.argv.slice(2));
