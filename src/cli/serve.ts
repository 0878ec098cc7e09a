/**
 * @module cli/serve
 * `cesar serve`: starts the HTTP service and turns SIGTERM/SIGINT into a graceful shutdown (a second signal
 * exits at once). Without its default model it still starts, answers not-ready on /health, and says which one
 * command installs what is missing.
 */
import process from 'node:process';

import type { Config } from '../config.ts';
import { createLogger } from '../logger.ts';
import type { Logger } from '../logger.ts';
import { createService } from '../service.ts';
import { createModelCatalog } from '../transcription/models.ts';
import { intOption, parseCommandArgs, stringOption } from './args.ts';
import type { OptionSpec } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { commandConfig, mergedEnv } from './settings.ts';

export const SERVE_USAGE = `Usage: cesar serve [options]

Starts the Cesar HTTP API. Each option overrides its environment variable, which overrides the same
variable in ./.env, which overrides the default.

Options:
  --host ADDRESS        address to listen on                 CESAR_HOST          (127.0.0.1)
  --port N              port to listen on, 0 picks a free one CESAR_PORT          (8000)
  --workers N           worker processes (one job each)      CESAR_MAX_WORKERS   (2)
  --models-dir DIR      where the Whisper models are         CESAR_MODELS_DIR    (./models)
  --data-dir DIR        job database, uploads, work files    CESAR_DATA_DIR      (./data)
  --default-model NAME  model for jobs that name none        CESAR_DEFAULT_MODEL (base)
  --log-format FORMAT   json or pretty                       CESAR_LOG_FORMAT    (pretty on a terminal, else json)
  -h, --help            show this help

Every other setting (upload size, attempts, leases, ffmpeg) is read from its CESAR_* variable; see the README.
`;

const OPTIONS: OptionSpec = {
  host: { type: 'string' },
  port: { type: 'string' },
  workers: { type: 'string' },
  'models-dir': { type: 'string' },
  'data-dir': { type: 'string' },
  'default-model': { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

/** Logs what is missing for the service to be ready and the command that installs it. */
export async function reportMissingModels(config: Config, logger: Logger): Promise<void> {
  const scan = await createModelCatalog(config.modelsDir).scan();
  const hasDefault = scan.models.some((model) => model.name === config.defaultModel);
  if (hasDefault && scan.vadModel !== null) {
    return;
  }
  const missing = [!hasDefault && `the default model ${config.defaultModel}`, scan.vadModel === null && 'the VAD model silero_vad.onnx'].filter(Boolean);
  logger.warn(`not ready: ${missing.join(' and ')} missing; install with: npx cesar models download ${config.defaultModel} --models-dir ${config.modelsDir}`, {
    models_dir: config.modelsDir,
    fix: `npx cesar models download ${config.defaultModel} --models-dir ${config.modelsDir}`,
  });
}

export async function serveCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return EXIT.ok;
  }
  const flags: Record<string, string | undefined> = {
    CESAR_HOST: stringOption(values, 'host'),
    CESAR_PORT: intOption(values, 'port', 0, 65535)?.toString(),
    CESAR_MAX_WORKERS: intOption(values, 'workers', 1, 64)?.toString(),
    CESAR_MODELS_DIR: stringOption(values, 'models-dir'),
    CESAR_DATA_DIR: stringOption(values, 'data-dir'),
    CESAR_DEFAULT_MODEL: stringOption(values, 'default-model'),
    CESAR_LOG_FORMAT: stringOption(values, 'log-format'),
  };
  // Readable lines on a terminal, unless the environment or .env chose a format.
  if (flags.CESAR_LOG_FORMAT === undefined && mergedEnv(process.env, process.cwd(), {}).CESAR_LOG_FORMAT === undefined && process.stdout.isTTY) {
    flags.CESAR_LOG_FORMAT = 'pretty';
  }
  const config = commandConfig(process.env, process.cwd(), flags);
  const logger = createLogger({ sink: process.stdout, format: config.logFormat });
  const service = await createService(config, logger);
  const { host, port } = await service.listen();
  logger.info('cesar listening', { url: `http://${host}:${port}`, docs: `http://${host}:${port}/docs`, data_dir: config.dataDir, models_dir: config.modelsDir });
  await reportMissingModels(config, logger);

  return new Promise<number>(() => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn('second signal; exiting now', { signal });
        process.exit(EXIT.interrupted);
      }
      stopping = true;
      logger.info('shutting down', { signal, grace_ms: config.shutdownGraceMs });
      service.close().then(
        () => {
          logger.info('stopped');
          // Explicit, as before the CLI: a lingering handle must not keep a stopped server's process alive.
          process.exit(EXIT.ok);
        },
        (error: unknown) => {
          logger.error('shutdown failed', { error });
          process.exit(EXIT.failed);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
