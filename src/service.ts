/**
 * @module service
 * Builds the whole service from a configuration: database, job store, upload storage, worker pool, dispatcher
 * and HTTP app. The one place where the backends are chosen (`CESAR_STORAGE_URL`: local folders or a bucket) and
 * where the role decides what runs: `api` (HTTP, no dispatcher, no worker processes), `worker` (dispatcher and
 * pool; its port serves only the health endpoints) or `all`. `main.ts` runs it; tests build it in-process on a
 * temporary data directory.
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
import { AppError } from './errors.ts';
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
import { DEFAULT_DOWNLOAD_TIMEOUT_MS } from './transcription/model-download.ts';
import { createModelInstaller } from './transcription/model-installer.ts';
import type { InstallOutcome } from './transcription/model-installer.ts';
import { createModelCatalog } from './transcription/models.ts';
import { createTranscriptionPool } from './transcription/worker-pool.ts';
import type { TranscriptionPool } from './transcription/worker-pool.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { createLocalBlobStore } from './storage/local-blob-store.ts';
import { createS3BlobStore } from './storage/s3-blob-store.ts';
import { openPostgres } from './postgres/database.ts';
import { createPostgresJobStore } from './postgres/job-store.ts';
import { createWebhookTarget } from './webhooks/webhook-target.ts';
import { createWebhooks } from './webhooks/webhooks.ts';

export interface Service {
  readonly config: Config;
  readonly db: Database;
  readonly store: JobStore;
  /** Where uploads are kept: local folders or the bucket of `CESAR_STORAGE_URL`. */
  readonly blobs: BlobStore;
  readonly dispatcher: Dispatcher;
  readonly retention: RetentionSweeper;
  /**
   * Downloads the default model and the VAD model when they are missing (`GET /health` shows the progress);
   * `close()` interrupts it. Resolves when done, never rejects: a failure is logged.
   */
  installMissingModels(): Promise<InstallOutcome>;
  /** Starts the dispatcher (unless an API node) and listens; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Graceful: stop accepting, let running jobs finish within `graceMs`, release the rest, close everything. */
  close(graceMs?: number): Promise<void>;
}

interface Backend {
  db: Database;
  store: JobStore;
  /** Wakes the caller when any node enqueues a job (a shared database); absent when only this process enqueues. */
  subscribe?: (listener: () => void) => () => void;
  close(): Promise<void>;
}

/** The one place that picks the database: PostgreSQL when `CESAR_DATABASE_URL` is set, else SQLite in the data directory. */
async function openBackend(config: Config, logger: Logger): Promise<Backend> {
  if (config.databaseUrl === null) {
    const db = await openDatabase(path.join(config.dataDir, 'cesar.db'));
    return { db, store: createJobStore(db), close: () => db.close() };
  }
  const db = await openPostgres({ url: config.databaseUrl, logger });
  try {
    const store = await createPostgresJobStore({
      db,
      url: config.databaseUrl,
      logger,
      leaseMs: config.leaseMs,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
    });
    return {
      db,
      store,
      subscribe: (listener) => store.subscribe(listener),
      close: async () => {
        await store.close();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}

export async function createService(config: Config, logger: Logger, clock: Clock = systemClock): Promise<Service> {
  if (config.storage === null) {
    await mkdir(path.join(config.dataDir, 'uploads'), { recursive: true });
  }
  await mkdir(path.join(config.dataDir, 'work'), { recursive: true });
  const backend = await openBackend(config, logger);
  const { db, store } = backend;
  const blobs = config.storage === null ? createLocalBlobStore(config.dataDir) : createS3BlobStore(config.storage);
  const models = createModelCatalog(config.modelsDir);
  const runsJobs = config.role !== 'api';
  const pool = runsJobs
    ? createTranscriptionPool({
        workers: config.maxWorkers,
        recycle: { maxJobs: config.workerMaxJobs, maxRssBytes: config.workerMaxRssBytes },
      })
    : noWorkers;
  const checksums = createChecksumCache(logger);
  const installer = createModelInstaller({
    catalog: models,
    defaultModel: config.defaultModel,
    baseUrl: config.modelsBaseUrl,
    logger,
    timeoutMs: DEFAULT_DOWNLOAD_TIMEOUT_MS,
  });
  const stopInstalling = new AbortController();
  let installing: Promise<InstallOutcome> | null = null;
  const urlPolicy = createUrlPolicy({ allowPrivateNetworks: config.urlAllowPrivateNetworks, allowedPorts: config.urlAllowedPorts });
  const jobEvents = createJobEventLog(db, clock, (error) => logger.error('recording a job event failed', { error }));
  const dispatcher = createDispatcher({
    store,
    pool,
    ffmpeg: createFfmpeg({ binaryPath: config.ffmpegPath ?? bundledFfmpegPath(), timeoutMs: config.ffmpegTimeoutMs, maxDurationSeconds: config.maxDurationSeconds }),
    models,
    logger,
    dataDir: config.dataDir,
    blobs,
    maxWorkers: config.maxWorkers,
    leaseMs: config.leaseMs,
    clock,
    download: createMediaDownloader({ policy: urlPolicy, maxBytes: config.maxDownloadBytes, totalTimeoutMs: config.downloadTimeoutMs }),
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    progressStored: (jobId) => jobEvents.progressStored(jobId),
  });
  const unsubscribe = backend.subscribe?.(() => dispatcher.notify());
  const retention = createRetentionSweeper({
    store,
    dataDir: config.dataDir,
    blobs,
    clock,
    logger,
    defaultRetentionSeconds: config.retentionSeconds,
    orphanMinAgeMs: config.orphanMinAgeSeconds * 1000,
    exclusively: (name, fn) => db.exclusively(name, fn),
  });
  const idempotency = createIdempotencyStore(db);
  // Requests in flight when the previous process stopped will never be answered: free their keys. On a shared
  // database other nodes' requests may be in flight, and a worker beside an API node on one SQLite file must not
  // free that node's: there a dead node's claims end with their lease instead.
  if (db.dialect !== 'postgres' && config.role !== 'worker') {
    await idempotency.clearInFlight();
  }
  await idempotency.purgeExpired(clock.now());
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
    blobs,
    role: config.role,
    defaultModel: config.defaultModel,
    maxAttempts: config.maxAttempts,
    maxUploadBytes: config.maxUploadBytes,
    uploadIdleTimeoutMs: config.uploadIdleTimeoutMs,
    maxConcurrentUploads: config.maxConcurrentUploads,
    apiKeys: createApiKeyVerifier(config.apiKeyDigests, config.adminApiKeyDigests),
    idempotency,
    idempotencyTtlSeconds: config.idempotencyTtlSeconds,
    jobEvents,
    webhooks,
    urlPolicy,
    retentionSeconds: config.retentionSeconds,
    maxPendingJobs: config.maxPendingJobs,
    workers: pool,
    checksums,
    modelDownload: () => installer.current(),
    openAIWaitSeconds: config.openAIWaitSeconds,
    startedMs: clock.now(),
    ...(db.dialect === 'postgres' && { database: { description: 'PostgreSQL', reachable: () => db.reachable() } }),
  });
  let server: Server | null = null;

  return {
    config,
    db,
    store,
    blobs,
    dispatcher,
    retention,
    installMissingModels() {
      installing ??= installer.installMissing(stopInstalling.signal);
      return installing;
    },
    async listen() {
      // Before any claim: a file left by a killed server is only an orphan while no job of ours runs. Another
      // node may be receiving an upload into the same storage right now, though: then only old files are.
      const alone = config.storage === null && config.role === 'all';
      try {
        await retention.removeOrphans(alone ? 0 : config.orphanMinAgeSeconds * 1000);
        await retention.sweep();
      } catch (error) {
        // A bucket that is down must not keep a node from starting: the periodic sweep tries again.
        logger.error('the start-up sweep failed', { error });
      }
      retention.start();
      jobEvents.start(dispatcher.events);
      await webhooks.start(dispatcher.events);
      if (runsJobs) {
        dispatcher.start();
      }
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
      stopInstalling.abort();
      await installing;
      await dispatcher.stop(graceMs);
      jobEvents.stop();
      await webhooks.stop();
      server?.closeAllConnections();
      await closing;
      await pool.destroy();
      unsubscribe?.();
      await blobs.close();
      await backend.close();
    },
  };
}

/** An API node's pool: its dispatcher never starts, so nothing is ever run on it. */
const noWorkers: TranscriptionPool = {
  run: () => Promise.reject(new AppError('internal_error', 'An API node runs no transcription.')),
  runMeasured: () => Promise.reject(new AppError('internal_error', 'An API node runs no transcription.')),
  workers: () => [],
  recycled: 0,
  destroy: () => Promise.resolve(),
};
