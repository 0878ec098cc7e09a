/**
 * @module service
 * Builds the whole service from a configuration: database, job store, worker pool, dispatcher and HTTP app.
 * `main.ts` runs it; tests build it in-process on a temporary data directory.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';

import { bundledFfmpegPath, createFfmpeg } from './audio/ffmpeg.ts';
import type { Config } from './config.ts';
import { createApp } from './http/app.ts';
import { openDatabase } from './jobs/database.ts';
import type { Database } from './jobs/database.ts';
import { createDispatcher, systemClock } from './jobs/dispatcher.ts';
import type { Clock, Dispatcher } from './jobs/dispatcher.ts';
import { createJobStore } from './jobs/job-store.ts';
import type { JobStore } from './jobs/job-store.ts';
import type { Logger } from './logger.ts';
import { createChecksumCache } from './transcription/checksum-cache.ts';
import { createModelCatalog } from './transcription/models.ts';
import { createTranscriptionPool } from './transcription/worker-pool.ts';

export interface Service {
  readonly config: Config;
  readonly db: Database;
  readonly store: JobStore;
  readonly dispatcher: Dispatcher;
  /** Starts the dispatcher and listens; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Graceful: stop accepting, let running jobs finish within `graceMs`, release the rest, close everything. */
  close(graceMs?: number): Promise<void>;
}

export async function createService(config: Config, logger: Logger, clock: Clock = systemClock): Promise<Service> {
  await mkdir(path.join(config.dataDir, 'uploads'), { recursive: true });
  await mkdir(path.join(config.dataDir, 'work'), { recursive: true });
  const db = await openDatabase(path.join(config.dataDir, 'cesar.db'));
  const store = createJobStore(db);
  const models = createModelCatalog(config.modelsDir);
  const pool = createTranscriptionPool({
    workers: config.maxWorkers,
    recycle: { maxJobs: config.workerMaxJobs, maxRssBytes: config.workerMaxRssBytes },
  });
  const checksums = createChecksumCache(logger);
  const dispatcher = createDispatcher({
    store,
    pool,
    ffmpeg: createFfmpeg({ binaryPath: config.ffmpegPath ?? bundledFfmpegPath(), timeoutMs: config.ffmpegTimeoutMs }),
    models,
    logger,
    dataDir: config.dataDir,
    maxWorkers: config.maxWorkers,
    leaseMs: config.leaseMs,
    clock,
  });
  const app = await createApp({
    store,
    dispatcher,
    models,
    logger,
    clock,
    dataDir: config.dataDir,
    defaultModel: config.defaultModel,
    maxAttempts: config.maxAttempts,
    maxUploadBytes: config.maxUploadBytes,
    workers: pool,
    checksums,
    startedMs: clock.now(),
  });
  let server: Server | null = null;

  return {
    config,
    db,
    store,
    dispatcher,
    listen() {
      dispatcher.start();
      return new Promise((resolve, reject) => {
        const listening = app.listen(config.port, config.host, (error?: Error) => {
          if (error) {
            reject(error);
            return;
          }
          const address = listening.address();
          resolve({ host: config.host, port: typeof address === 'object' && address ? address.port : config.port });
        });
        server = listening;
      });
    },
    async close(graceMs = config.shutdownGraceMs) {
      const closing = server
        ? new Promise<void>((resolve) => {
            server?.close(() => resolve());
            server?.closeIdleConnections();
          })
        : Promise.resolve();
      await dispatcher.stop(graceMs);
      server?.closeAllConnections();
      await closing;
      await pool.destroy();
      await db.close();
    },
  };
}
