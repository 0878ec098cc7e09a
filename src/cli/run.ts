/**
 * @module cli/run
 * The `cesar` command line: picks the subcommand, and turns errors into a message and an exit code.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';

import { CliError, EXIT, UsageError } from './exit-codes.ts';
import { modelsCommand, MODELS_USAGE } from './models.ts';
import { serveCommand, SERVE_USAGE } from './serve.ts';
import { submitCommand, SUBMIT_USAGE } from './submit.ts';
import { transcribeCommand, TRANSCRIBE_USAGE } from './transcribe.ts';

const USAGE = `Usage: cesar COMMAND [options]

Offline-first transcription with Whisper: a job API server, and the same engine from the command line.

Commands:
  serve                   start the HTTP API (docs at /docs)
  transcribe FILE...      transcribe local files without a server
  submit FILE|URL         send a file to a running server, optionally wait for the transcript
  models                  list the installed models
  models download NAME    download and install an official sherpa-onnx Whisper model (tiny.en, base, small...)

Run cesar COMMAND --help for the options of each. Settings come from flags, then CESAR_* environment
variables, then a .env file in the current directory, then defaults.
`;

const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<number>; usage: string }> = {
  serve: { run: serveCommand, usage: SERVE_USAGE },
  transcribe: { run: transcribeCommand, usage: TRANSCRIBE_USAGE },
  submit: { run: submitCommand, usage: SUBMIT_USAGE },
  models: { run: modelsCommand, usage: MODELS_USAGE },
};

export async function runCli(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? process.stderr : process.stdout).write(USAGE);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`cesar ${pkg.version}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`cesar: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`cesar ${name}: ${error.message}\n\n${command.usage}`);
      return error.exitCode;
    }
    if (error instanceof CliError) {
      process.stderr.write(`cesar ${name}: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`cesar ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  }
}
