/**
 * @module config
 * Turns the environment into a frozen, typed configuration, or fails with a message that names the variable.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

import { DEFAULT_ALLOWED_PORTS, parsePortList } from './net/url-policy.ts';

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly modelsDir: string;
  readonly maxWorkers: number;
  readonly defaultModel: string;
  readonly maxUploadBytes: number;
  /** An upload whose client sends nothing for this long is cut and its partial file deleted. */
  readonly uploadIdleTimeoutMs: number;
  /** Uploads read at once; past it `POST /jobs` answers 503 before reading the body. */
  readonly maxConcurrentUploads: number;
  /** How long a claimed job stays owned without a heartbeat before another worker may take it. */
  readonly leaseMs: number;
  readonly maxAttempts: number;
  /** How long running jobs get to finish after SIGTERM before they are aborted and released. */
  readonly shutdownGraceMs: number;
  /** Path of an ffmpeg binary to use instead of the bundled 2018 build. */
  readonly ffmpegPath: string | null;
  /** Wall-clock limit of one ffmpeg normalization. */
  readonly ffmpegTimeoutMs: number;
  readonly logFormat: 'json' | 'pretty';
  /** Longest accepted media; longer files fail with `media_too_long` before transcription. 0: no limit. */
  readonly maxDurationSeconds: number;
  /** LAN deployments: URLs may point at private and loopback addresses. */
  readonly urlAllowPrivateNetworks: boolean;
  /** Ports a submitted URL (and every redirect) may use. */
  readonly urlAllowedPorts: ReadonlySet<number>;
  /** Largest download of a submitted URL. */
  readonly maxDownloadBytes: number;
  /** Wall-clock limit of one download, redirects included. */
  readonly downloadTimeoutMs: number;
  /** Where `cesar models download` fetches the official release files (a mirror for machines without GitHub). */
  readonly modelsBaseUrl: string;
  /** Retry delay of a failed attempt before jitter: `retryBaseMs * 2^(attempt-1)`, at most `retryMaxMs`. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** How long finished jobs and their files are kept, unless a job asks for another time. */
  readonly retentionSeconds: number;
  /** Past this many pending jobs, `POST /jobs` answers 503 instead of accepting more work. */
  readonly maxPendingJobs: number;
  /** SHA-256 digests of the accepted API keys; empty: no key needed. The keys themselves are not kept. */
  readonly apiKeyDigests: readonly Buffer[];
  /** SHA-256 digests of the admin keys: accepted like the others, and they see every key's jobs. */
  readonly adminApiKeyDigests: readonly Buffer[];
  /** How long an `Idempotency-Key` of `POST /jobs` is remembered. */
  readonly idempotencyTtlSeconds: number;
  /** Webhook URL for jobs that name none; null: only jobs with a `webhook_url` get webhooks. */
  readonly webhookDefaultUrl: string | null;
  /** Active `whsec_` signing secrets (one, or two while rotating); every message carries a signature of each. */
  readonly webhookSecrets: readonly string[];
  /** First retry delay of a webhook delivery; each later one is 4 times longer, up to `webhookRetryMaxMs`. */
  readonly webhookRetryBaseMs: number;
  readonly webhookRetryMaxMs: number;
  readonly webhookMaxAttempts: number;
  /** Limit of one webhook request, answer included. */
  readonly webhookTimeoutMs: number;
  /** A worker process is replaced after this many jobs (0: never); the ONNX runtime never returns memory. */
  readonly workerMaxJobs: number;
  /** A worker process is replaced once its resident memory passes this (0: never). */
  readonly workerMaxRssBytes: number;
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(name, `expected a whole number, got ${JSON.stringify(raw)}`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function readString(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? fallback : raw.trim();
}

function readBool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (['1', 'true', 'yes'].includes(raw)) {
    return true;
  }
  if (['0', 'false', 'no'].includes(raw)) {
    return false;
  }
  throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
}

function readPorts(env: Env, name: string, fallback: ReadonlySet<number>): ReadonlySet<number> {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') {
    return fallback;
  }
  try {
    return parsePortList(raw);
  } catch (error) {
    throw new ConfigError(name, (error as Error).message);
  }
}

function readApiKeys(env: Env, name: 'CESAR_API_KEYS' | 'CESAR_ADMIN_API_KEYS'): Buffer[] {
  const raw = env[name] ?? '';
  const entries = raw.split(',').map((entry) => entry.trim()).filter(Boolean);
  return entries.map((entry) => {
    const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(entry);
    if (hashed?.[1]) {
      return Buffer.from(hashed[1], 'hex');
    }
    if (entry.startsWith('sha256:')) {
      throw new ConfigError(name, 'a sha256: entry needs 64 hex digits');
    }
    if (entry.length < 16) {
      // The value is a secret: say what is wrong, never echo it.
      throw new ConfigError(name, 'a plain key must have at least 16 characters');
    }
    return createHash('sha256').update(entry, 'utf8').digest();
  });
}

function readWebhookSecrets(env: Env): string[] {
  const secrets = (env.CESAR_WEBHOOK_SECRETS ?? '').split(/[\s,]+/).filter(Boolean);
  if (secrets.length > 2) {
    throw new ConfigError('CESAR_WEBHOOK_SECRETS', 'at most two secrets (the current one and the next) may be active');
  }
  for (const secret of secrets) {
    const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
    const bytes = match?.[1] ? Buffer.from(match[1], 'base64').length : 0;
    if (bytes < 24 || bytes > 64) {
      throw new ConfigError('CESAR_WEBHOOK_SECRETS', 'each secret must be whsec_ followed by base64 of 24 to 64 random bytes');
    }
  }
  return secrets;
}

function readUrl(env: Env, name: string): string | null {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') {
    return null;
  }
  if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
    throw new ConfigError(name, `expected an http or https URL, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** Reads the configuration from `env` (normally `process.env`); relative paths resolve against `cwd`. */
export function loadConfig(env: Env, cwd: string): Config {
  const host = readString(env, 'CESAR_HOST', '127.0.0.1');
  const defaultModel = readString(env, 'CESAR_DEFAULT_MODEL', 'base');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(defaultModel)) {
    throw new ConfigError('CESAR_DEFAULT_MODEL', `not a model name: ${JSON.stringify(defaultModel)}`);
  }
  const logFormat = readString(env, 'CESAR_LOG_FORMAT', 'json');
  if (logFormat !== 'json' && logFormat !== 'pretty') {
    throw new ConfigError('CESAR_LOG_FORMAT', `expected json or pretty, got ${JSON.stringify(logFormat)}`);
  }
  const ffmpegPath = env.CESAR_FFMPEG_PATH?.trim();
  const webhookDefaultUrl = readUrl(env, 'CESAR_WEBHOOK_URL');
  const webhookSecrets = readWebhookSecrets(env);
  if (webhookDefaultUrl !== null && webhookSecrets.length === 0) {
    throw new ConfigError('CESAR_WEBHOOK_URL', 'webhooks are signed: set CESAR_WEBHOOK_SECRETS too');
  }
  return Object.freeze({
    host,
    port: readInt(env, 'CESAR_PORT', 8000, 0, 65535),
    dataDir: path.resolve(cwd, readString(env, 'CESAR_DATA_DIR', './data')),
    modelsDir: path.resolve(cwd, readString(env, 'CESAR_MODELS_DIR', './models')),
    maxWorkers: readInt(env, 'CESAR_MAX_WORKERS', 2, 1, 64),
    defaultModel,
    maxUploadBytes: readInt(env, 'CESAR_MAX_UPLOAD_SIZE_MB', 500, 1, 1_000_000) * 1024 * 1024,
    uploadIdleTimeoutMs: readInt(env, 'CESAR_UPLOAD_IDLE_TIMEOUT_MS', 15_000, 100, 600_000),
    maxConcurrentUploads: readInt(env, 'CESAR_MAX_CONCURRENT_UPLOADS', 32, 1, 10_000),
    leaseMs: readInt(env, 'CESAR_LEASE_MS', 30_000, 500, 3_600_000),
    maxAttempts: readInt(env, 'CESAR_MAX_ATTEMPTS', 3, 1, 100),
    shutdownGraceMs: readInt(env, 'CESAR_SHUTDOWN_GRACE_MS', 25_000, 0, 3_600_000),
    ffmpegPath: ffmpegPath === undefined || ffmpegPath === '' ? null : path.resolve(cwd, ffmpegPath),
    ffmpegTimeoutMs: readInt(env, 'CESAR_FFMPEG_TIMEOUT_MS', 600_000, 1000, 86_400_000),
    logFormat,
    maxDurationSeconds: readInt(env, 'CESAR_MAX_DURATION_SECONDS', 4 * 3600, 0, 7 * 86_400),
    urlAllowPrivateNetworks: readBool(env, 'CESAR_URL_ALLOW_PRIVATE_NETWORKS', false),
    urlAllowedPorts: readPorts(env, 'CESAR_URL_ALLOWED_PORTS', DEFAULT_ALLOWED_PORTS),
    maxDownloadBytes: readInt(env, 'CESAR_MAX_DOWNLOAD_SIZE_MB', readInt(env, 'CESAR_MAX_UPLOAD_SIZE_MB', 500, 1, 1_000_000), 1, 1_000_000) * 1024 * 1024,
    downloadTimeoutMs: readInt(env, 'CESAR_DOWNLOAD_TIMEOUT_MS', 300_000, 1000, 86_400_000),
    modelsBaseUrl: readUrl(env, 'CESAR_MODELS_BASE_URL') ?? 'https://github.com/k2-fsa/sherpa-onnx/releases/download/asr-models/',
    retryBaseMs: readInt(env, 'CESAR_RETRY_BASE_MS', 5000, 10, 3_600_000),
    retryMaxMs: readInt(env, 'CESAR_RETRY_MAX_MS', 600_000, 10, 86_400_000),
    retentionSeconds: readInt(env, 'CESAR_RETENTION_SECONDS', 7 * 86_400, 1, 315_360_000),
    maxPendingJobs: readInt(env, 'CESAR_MAX_PENDING_JOBS', 10_000, 1, 100_000_000),
    apiKeyDigests: readApiKeys(env, 'CESAR_API_KEYS'),
    adminApiKeyDigests: readApiKeys(env, 'CESAR_ADMIN_API_KEYS'),
    idempotencyTtlSeconds: readInt(env, 'CESAR_IDEMPOTENCY_TTL_SECONDS', 86_400, 60, 30 * 86_400),
    webhookDefaultUrl,
    webhookSecrets,
    webhookRetryBaseMs: readInt(env, 'CESAR_WEBHOOK_RETRY_BASE_MS', 5000, 10, 3_600_000),
    webhookRetryMaxMs: readInt(env, 'CESAR_WEBHOOK_RETRY_MAX_MS', 6 * 3_600_000, 10, 86_400_000),
    webhookMaxAttempts: readInt(env, 'CESAR_WEBHOOK_MAX_ATTEMPTS', 12, 1, 100),
    webhookTimeoutMs: readInt(env, 'CESAR_WEBHOOK_TIMEOUT_MS', 15_000, 100, 120_000),
    workerMaxJobs: readInt(env, 'CESAR_WORKER_MAX_JOBS', 100, 0, 1_000_000),
    workerMaxRssBytes: readInt(env, 'CESAR_WORKER_MAX_RSS_MB', 2048, 0, 1_000_000) * 1024 * 1024,
  });
}
