/**
 * @module service
 * Builds the whole service from a configuration: database, job store, worker pool, dispatcher and HTTP app.
 * `main.ts` runs it; tests build it in-process on a temporary data directory.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';

import { bundledFfmpegPath, createFfmpeg } from './audio/ffmpeg.ts';
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import { createApiKeyVerifier } from './http/api-keys.ts';
import { createApp } from './http/app.ts';
import { openDatabase } from './jobs/database.ts';
import type { Database } from './jobs/database.ts';
import { createDispatcher } from './jobs/dispatcher.ts';
import type { Dispatcher } from './jobs/dispatcher.ts';
import { createIdempotencyStore } from './jobs/idempotency-store.ts';
import { createJobEventLog } from './jobs/job-events.ts';
import { createJobStore } from './jobs/job-store.ts';
import type { JobStore } from './jobs/job-store.ts';
import { createRetentionSweeper } from './jobs/retention.ts';
import type { RetentionSweeper } from './jobs/retention.ts';
import type { Logger } from './logger.ts';
import { createMediaDownloader } from './net/media-download.ts';
import { createUrlPolicy } from './net/url-policy.ts';
import { createChecksumCache } from './transcription/checksum-cache.ts';
import { createModelCatalog } from './transcription/models.ts';
import { createTranscriptionPool } from './transcription/worker-pool.ts';
import { createWebhookTarget } from './webhooks/webhook-target.ts';
import { createWebhooks } from './webhooks/webhooks.ts';

export interface Service {
  readonly config: Config;
  readonly db: Database;
  readonly store: JobStore;
  readonly dispatcher: Dispatcher;
  readonly retention: RetentionSweeper;
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
  const urlPolicy = createUrlPolicy({ allowPrivateNetworks: config.urlAllowPrivateNetworks, allowedPorts: config.urlAllowedPorts });
  const dispatcher = createDispatcher({
    store,
    pool,
    ffmpeg: createFfmpeg({ binaryPath: config.ffmpegPath ?? bundledFfmpegPath(), timeoutMs: config.ffmpegTimeoutMs, maxDurationSeconds: config.maxDurationSeconds }),
    models,
    logger,
    dataDir: config.dataDir,
    maxWorkers: config.maxWorkers,
    leaseMs: config.leaseMs,
    clock,
    download: createMediaDownloader({ policy: urlPolicy, maxBytes: config.maxDownloadBytes, totalTimeoutMs: config.downloadTimeoutMs }),
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
  });
  const retention = createRetentionSweeper({ store, dataDir: config.dataDir, clock, logger, defaultRetentionSeconds: config.retentionSeconds });
  const idempotency = createIdempotencyStore(db);
  // Requests in flight when the previous process stopped will never be answered: free their keys.
  await idempotency.clearInFlight();
  await idempotency.purgeExpired(clock.now());
  const jobEvents = createJobEventLog(db, clock, (error) => logger.error('recording a job event failed', { error }));
  const webhooks = createWebhooks({
    db,
    target: createWebhookTarget(urlPolicy),
    clock,
    logger,
    settings: {
      defaultUrl: config.webhookDefaultUrl,
      secrets: config.webhookSecrets,
      retryBaseMs: config.webhookRetryBaseMs,
      retryMaxMs: config.webhookRetryMaxMs,
      maxAttempts: config.webhookMaxAttempts,
      timeoutMs: config.webhookTimeoutMs,
    },
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
    apiKeys: createApiKeyVerifier(config.apiKeyDigests),
    idempotency,
    idempotencyTtlSeconds: config.idempotencyTtlSeconds,
    jobEvents,
    webhooks,
    urlPolicy,
    retentionSeconds: config.retentionSeconds,
    maxPendingJobs: config.maxPendingJobs,
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
    retention,
    async listen() {
      // Before any claim: a file left by a killed server is only an orphan while no job of ours runs.
      await retention.removeOrphans();
      await retention.sweep();
      retention.start();
      jobEvents.start(dispatcher.events);
      await webhooks.start(dispatcher.events);
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
      retention.stop();
      await dispatcher.stop(graceMs);
      jobEvents.stop();
      await webhooks.stop();
      server?.closeAllConnections();
      await closing;
      await pool.destroy();
      await db.close();
    },
  };
}
