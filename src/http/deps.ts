/**
 * @module http/deps
 * What the HTTP handlers need from the rest of the service; built in `main.ts` or by a test.
 */
import type { Clock } from '../clock.ts';
import type { Dispatcher } from '../jobs/dispatcher.ts';
import type { JobStore } from '../jobs/job-store.ts';
import type { IdempotencyStore } from '../jobs/idempotency-store.ts';
import type { JobEventLog } from '../jobs/job-events.ts';
import type { Logger } from '../logger.ts';
import type { Config } from '../config.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Webhooks } from '../webhooks/webhooks.ts';
import type { ApiKeyVerifier } from './api-keys.ts';
import type { UrlPolicy } from '../net/url-policy.ts';
import type { ChecksumCache } from '../transcription/checksum-cache.ts';
import type { ModelDownloadState } from '../transcription/model-installer.ts';
import type { ModelCatalog } from '../transcription/models.ts';
import type { TranscriptionPool } from '../transcription/worker-pool.ts';

export interface ApiDeps {
  store: JobStore;
  dispatcher: Pick<Dispatcher, 'notify' | 'abortJob'>;
  models: ModelCatalog;
  logger: Logger;
  clock: Clock;
  dataDir: string;
  /** Where uploads are stored (streamed there as they arrive). */
  blobs: BlobStore;
  /** An `api` node has no workers and may have no models: the worker checks what the API node cannot. */
  role: Config['role'];
  defaultModel: string;
  maxAttempts: number;
  maxUploadBytes: number;
  /** A request body that receives nothing for this long is cut (408). */
  uploadIdleTimeoutMs: number;
  /** Multipart uploads read at once; past it, 503 before the body is read. */
  maxConcurrentUploads: number;
  apiKeys: ApiKeyVerifier;
  idempotency: IdempotencyStore;
  idempotencyTtlSeconds: number;
  jobEvents: JobEventLog;
  webhooks: Webhooks;
  /** Checks submitted URLs at the door; the worker checks every resolved address again. */
  urlPolicy: UrlPolicy;
  /** Retention of a job that does not ask for its own. */
  retentionSeconds: number;
  maxPendingJobs: number;
  /** What the worker processes report about themselves (loaded model, memory). */
  workers: Pick<TranscriptionPool, 'workers' | 'recycled'>;
  checksums: ChecksumCache;
  /** The model download `cesar serve` runs on its first start, while there is one. */
  modelDownload: () => ModelDownloadState | null;
  /** The least time an OpenAI-compatible request waits for its job before answering 202. */
  openAIWaitSeconds: number;
  /** When the service started, for the liveness answer. */
  startedMs: number;
  /** A database on another machine (PostgreSQL): `/health` is not ready while it does not answer. */
  database?: { readonly description: string; reachable(): Promise<boolean> };
}
