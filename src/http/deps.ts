/**
 * @module http/deps
 * What the HTTP handlers need from the rest of the service; built in `main.ts` or by a test.
 */
import type { Dispatcher, Clock } from '../jobs/dispatcher.ts';
import type { JobStore } from '../jobs/job-store.ts';
import type { IdempotencyStore } from '../jobs/idempotency-store.ts';
import type { JobEventLog } from '../jobs/job-events.ts';
import type { Logger } from '../logger.ts';
import type { Webhooks } from '../webhooks/webhooks.ts';
import type { ApiKeyVerifier } from './api-keys.ts';
import type { UrlPolicy } from '../net/url-policy.ts';
import type { ModelCatalog } from '../transcription/models.ts';

export interface ApiDeps {
  store: JobStore;
  dispatcher: Pick<Dispatcher, 'notify' | 'abortJob'>;
  models: ModelCatalog;
  logger: Logger;
  clock: Clock;
  dataDir: string;
  defaultModel: string;
  maxAttempts: number;
  maxUploadBytes: number;
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
}
