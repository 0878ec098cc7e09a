/**
 * @module cli/exit-codes
 * The exit codes every command keeps, so that scripts can tell a bad invocation from a failed file.
 */
export const EXIT = {
  ok: 0,
  /** The work failed: a file could not be transcribed, a job failed, a download or verification failed. */
  failed: 1,
  /** Bad arguments or configuration; nothing was attempted. */
  usage: 2,
  /** The environment is not ready: a model is not installed, the server cannot be reached. */
  unavailable: 3,
  interrupted: 130,
} as const;

/** An error that ends a command with a message (no stack trace) and a chosen exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Bad arguments: the command prints this message and its usage, then exits with 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}
