/**
 * @module cli/serve
 * `cesar serve`: starts the HTTP service (in the role `--role` says) and turns SIGTERM/SIGINT into a graceful
 * shutdown (a second signal exits at once). Without its default model or the VAD model it still starts, answering not-ready on /health,
 * and installs them from the release site; offline, or when that fails, it says which one command installs
 * what is missing.
 */
import process from 'node:process';

import { SETTINGS } from '../config.ts';
import type { Config, Setting } from '../config.ts';
import { configFlagsHelp, configHelp } from '../config-docs.ts';
import { createLogger } from '../logger.ts';
import type { Logger } from '../logger.ts';
import { createService } from '../service.ts';
import type { Service } from '../service.ts';
import { createModelCatalog } from '../transcription/models.ts';
import { intOption, parseCommandArgs, stringOption } from './args.ts';
import type { OptionSpec, ParsedArgs } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { commandConfig, mergedEnv } from './settings.ts';

export const SERVE_USAGE = `Usage: cesar serve [options]

Starts the Cesar HTTP API and its workers (--role api: the API alone, which needs no models; --role
worker: the workers alone, with only GET /health on the port). When the default model or the VAD model is
missing, it first downloads them from CESAR_MODELS_BASE_URL (GET /health answers 503 with the download's
progress meanwhile); offline, it starts not ready and names the command that installs them. Each option overrides its environment
variable, which overrides the same variable in ./.env, which overrides the default.

Options:
${configFlagsHelp([['-h, --help', 'show this help']])}
Settings (CESAR_* variables; the README's Configuration section has the same table):
${configHelp()}`;

const FLAGGED = Object.values(SETTINGS as Record<string, Setting<unknown>>).flatMap((setting) => (setting.flag ? [{ setting, flag: setting.flag }] : []));

const OPTIONS: OptionSpec = {
  ...Object.fromEntries(FLAGGED.map(({ flag }) => [flag.name, { type: flag.value ? ('string' as const) : ('boolean' as const) }])),
  help: { type: 'boolean', short: 'h' },
};

/** The variables the flags set; whole numbers are checked here so that the error names the flag. */
function flagVariables(values: ParsedArgs['values']): Record<string, string | undefined> {
  return Object.fromEntries(
    FLAGGED.map(({ setting, flag }) => {
      if (!flag.value) {
        return [setting.variable, values[flag.name] === true ? 'true' : undefined];
      }
      const value = setting.range ? intOption(values, flag.name, setting.range.min, setting.range.max)?.toString() : stringOption(values, flag.name);
      return [setting.variable, value];
    }),
  );
}

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
  const flags = flagVariables(values);
  // Readable lines on a terminal, unless the environment or .env chose a format.
  if (flags.CESAR_LOG_FORMAT === undefined && mergedEnv(process.env, process.cwd(), {}).CESAR_LOG_FORMAT === undefined && process.stdout.isTTY) {
    flags.CESAR_LOG_FORMAT = 'pretty';
  }
  const config = commandConfig(process.env, process.cwd(), flags);
  const logger = createLogger({ sink: process.stdout, format: config.logFormat });
  const service = await createService(config, logger);
  const { host, port } = await service.listen();
  logger.info('cesar listening', {
    url: `http://${host}:${port}`,
    docs: `http://${host}:${port}/docs`,
    role: config.role,
    data_dir: config.dataDir,
    models_dir: config.modelsDir,
    storage: service.blobs.location,
  });
  const stopped = stopOnSignals(service, config, logger);
  // An API node loads no model: models are installed where jobs are transcribed.
  if (config.role !== 'api' && (config.offline || (await service.installMissingModels()) !== 'aborted')) {
    await reportMissingModels(config, logger);
  }
  return stopped;
}

/** Never resolves: the process exits once the service has closed. */
function stopOnSignals(service: Service, config: Config, logger: Logger): Promise<number> {
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
