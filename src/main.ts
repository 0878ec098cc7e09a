/**
 * @module main
 * The composition root and the only module with side effects: reads the environment, starts the service,
 * and turns SIGTERM/SIGINT into a graceful shutdown (a second signal exits at once).
 */
import process from 'node:process';

import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { createService } from './service.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.cwd());
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cesar: invalid configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ sink: process.stdout, format: config.logFormat });
  const service = await createService(config, logger);
  const { host, port } = await service.listen();
  logger.info('cesar listening', { url: `http://${host}:${port}`, docs: `http://${host}:${port}/docs`, data_dir: config.dataDir, models_dir: config.modelsDir });

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn('second signal; exiting now', { signal });
      process.exit(130);
    }
    stopping = true;
    logger.info('shutting down', { signal, grace_ms: config.shutdownGraceMs });
    service.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((error: unknown) => {
  process.stderr.write(`cesar: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
