/**
 * @module config
 * The configuration as one table: every `CESAR_*` variable with its default, the values it accepts and what it
 * means. `loadConfig` reads the environment through it; `cesar serve --help` and the README's configuration
 * section are rendered from it (src/config-docs.ts), and a test fails when the README drifts from it.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

import { DEFAULT_ALLOWED_PORTS, parsePortList } from './net/url-policy.ts';
import type { S3Location } from './storage/s3-blob-store.ts';

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

interface ReadContext {
  readonly env: Env;
  /** Relative paths resolve against it. */
  readonly cwd: string;
}

/** One row of the table. */
export interface Setting<T> {
  readonly variable: string;
  /** The default as the documentation shows it. */
  readonly shownDefault: string;
  /** The accepted values as the documentation shows them. */
  readonly accepts: string;
  /** Markdown (code spans only): the README shows it as is, `--help` without the backticks. */
  readonly meaning: string;
  /** The `cesar serve` flag that sets the variable; `value` names its argument, none for a switch. */
  readonly flag?: { readonly name: string; readonly value?: string };
  /** Whole-number settings: the bounds, which a flag is checked against too. */
  readonly range?: { readonly min: number; readonly max: number };
  /** The value, from the variable's raw text (undefined or blank: the default). Throws a ConfigError. */
  read(raw: string | undefined, context: ReadContext): T;
}

interface Row {
  variable: string;
  meaning: string;
  flag?: { name: string; value?: string };
}

const blank = (raw: string | undefined): raw is undefined => raw === undefined || raw.trim() === '';

/** A whole number in `[min, max]`; `scale` turns the variable's unit into the configuration's (MB into bytes). */
function integer(row: Row & { default: number; min: number; max: number; scale?: number; shownDefault?: string }): Setting<number> {
  const scale = row.scale ?? 1;
  return {
    ...row,
    shownDefault: row.shownDefault ?? `\`${row.default}\``,
    accepts: `${row.min} to ${row.max}`,
    range: { min: row.min, max: row.max },
    read(raw) {
      if (blank(raw)) {
        return row.default * scale;
      }
      if (!/^\d+$/.test(raw.trim())) {
        throw new ConfigError(row.variable, `expected a whole number, got ${JSON.stringify(raw)}`);
      }
      const value = Number(raw.trim());
      if (value < row.min || value > row.max) {
        throw new ConfigError(row.variable, `must be between ${row.min} and ${row.max}, got ${value}`);
      }
      return value * scale;
    },
  };
}

function text(row: Row & { default: string; accepts: string; pattern?: RegExp }): Setting<string> {
  return {
    ...row,
    shownDefault: `\`${row.default}\``,
    read(raw) {
      const value = blank(raw) ? row.default : raw.trim();
      if (row.pattern && !row.pattern.test(value)) {
        throw new ConfigError(row.variable, `expected ${row.accepts}, got ${JSON.stringify(value)}`);
      }
      return value;
    },
  };
}

function directory(row: Row & { default: string }): Setting<string> {
  return {
    ...row,
    shownDefault: `\`${row.default}\``,
    accepts: 'a path, relative to the working directory',
    read: (raw, { cwd }) => path.resolve(cwd, blank(raw) ? row.default : raw.trim()),
  };
}

function choice<const V extends string>(row: Row & { default: V; values: readonly V[]; shownDefault?: string }): Setting<V> {
  const accepts = row.values.map((value) => `\`${value}\``).join(' or ');
  return {
    ...row,
    shownDefault: row.shownDefault ?? `\`${row.default}\``,
    accepts,
    read(raw) {
      const value = blank(raw) ? row.default : raw.trim();
      const known = row.values.find((candidate) => candidate === value);
      if (known === undefined) {
        throw new ConfigError(row.variable, `expected ${row.values.join(' or ')}, got ${JSON.stringify(value)}`);
      }
      return known;
    },
  };
}

function flag(row: Row & { default: boolean }): Setting<boolean> {
  return {
    ...row,
    shownDefault: `\`${String(row.default)}\``,
    accepts: '`true`/`false`, `1`/`0`, `yes`/`no`',
    read(raw) {
      const value = raw?.trim().toLowerCase();
      if (value === undefined || value === '') {
        return row.default;
      }
      if (['1', 'true', 'yes'].includes(value)) {
        return true;
      }
      if (['0', 'false', 'no'].includes(value)) {
        return false;
      }
      throw new ConfigError(row.variable, `expected true or false, got ${JSON.stringify(value)}`);
    },
  };
}

function httpUrl(raw: string | undefined, variable: string): string | null {
  if (blank(raw)) {
    return null;
  }
  const value = raw.trim();
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new ConfigError(variable, `expected an http or https URL, got ${JSON.stringify(value)}`);
  }
  return value;
}

function apiKeyDigests(raw: string | undefined, name: string): Buffer[] {
  const entries = (raw ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
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

function webhookSecrets(raw: string | undefined): string[] {
  const secrets = (raw ?? '').split(/[\s,]+/).filter(Boolean);
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

const MB = 1024 * 1024;
/** sherpa-onnx's release of the Whisper and VAD models. */
const OFFICIAL_RELEASES_URL = 'https://github.com/k2-fsa/sherpa-onnx/releases/download/asr-models/';

const maxUploadSize = integer({
  variable: 'CESAR_MAX_UPLOAD_SIZE_MB',
  default: 500,
  min: 1,
  max: 1_000_000,
  scale: MB,
  meaning: 'largest accepted upload, inclusive (larger ones get 413)',
});

const maxDownloadSize = integer({
  variable: 'CESAR_MAX_DOWNLOAD_SIZE_MB',
  default: 500,
  min: 1,
  max: 1_000_000,
  scale: MB,
  meaning: 'largest download of a submitted URL',
});

/**
 * `s3://bucket/prefix` with the standard AWS variables beside it, read here so that the whole storage choice is
 * one configuration value (a test's service gets it from its own env, not from the process's).
 */
function storageUrl(raw: string | undefined, env: Env): S3Location | null {
  if (blank(raw)) {
    return null;
  }
  const value = raw.trim();
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(value);
  if (!match?.[1]) {
    throw new ConfigError('CESAR_STORAGE_URL', `expected s3://bucket or s3://bucket/prefix, got ${JSON.stringify(value)}`);
  }
  const endpoint = [env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL].find((candidate) => !blank(candidate))?.trim() ?? null;
  if (endpoint !== null && httpUrl(endpoint, 'AWS_ENDPOINT_URL') === null) {
    throw new ConfigError('AWS_ENDPOINT_URL', 'expected an http or https URL');
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  const sessionToken = env.AWS_SESSION_TOKEN?.trim();
  return {
    bucket: match[1],
    prefix: (match[2] ?? '').replace(/^\/+|\/+$/g, ''),
    endpoint,
    region: [env.AWS_REGION, env.AWS_DEFAULT_REGION].find((candidate) => !blank(candidate))?.trim() ?? 'us-east-1',
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) } : null,
  };
}

/** The table, in the order the documentation lists it; each key is the configuration's member. */
export const SETTINGS = {
  host: text({ variable: 'CESAR_HOST', default: '127.0.0.1', accepts: 'a host name or IP address', flag: { name: 'host', value: 'ADDRESS' }, meaning: 'address to listen on' }),
  port: integer({ variable: 'CESAR_PORT', default: 8000, min: 0, max: 65535, flag: { name: 'port', value: 'N' }, meaning: 'port to listen on (`0` picks a free one)' }),
  dataDir: directory({
    variable: 'CESAR_DATA_DIR',
    default: './data',
    flag: { name: 'data-dir', value: 'DIR' },
    meaning: 'where the job database, uploads (unless `CESAR_STORAGE_URL` is set) and work files live; nothing is written elsewhere',
  }),
  databaseUrl: {
    variable: 'CESAR_DATABASE_URL',
    shownDefault: 'SQLite in the data directory',
    accepts: 'a `postgres://` or `postgresql://` URL',
    meaning:
      'keep jobs, transcripts, the event log, the webhook outbox and idempotency keys in this PostgreSQL database (13 or later) instead of SQLite, with the queue on pg-boss; several nodes may share it',
    read: (raw) => {
      if (blank(raw)) {
        return null;
      }
      let url: URL;
      try {
        url = new URL(raw.trim());
      } catch {
        throw new ConfigError('CESAR_DATABASE_URL', 'expected a postgres:// URL');
      }
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
        throw new ConfigError('CESAR_DATABASE_URL', `expected a postgres:// URL, got ${url.protocol}`);
      }
      return raw.trim();
    },
  } satisfies Setting<string | null>,
  modelsDir: directory({
    variable: 'CESAR_MODELS_DIR',
    default: './models',
    flag: { name: 'models-dir', value: 'DIR' },
    meaning: 'where the Whisper models and the VAD model are installed',
  }),
  role: choice({
    variable: 'CESAR_ROLE',
    default: 'all',
    values: ['all', 'api', 'worker'],
    flag: { name: 'role', value: 'ROLE' },
    meaning:
      '`api` accepts and serves jobs without transcribing (needs no models), `worker` claims and transcribes them (serves only `GET /health` and `GET /health/live` on its port), `all` does both. Any number of each may share one database and one storage (see [Running on many machines](#running-on-many-machines))',
  }),
  storage: {
    variable: 'CESAR_STORAGE_URL',
    shownDefault: 'local folders in the data directory',
    accepts: '`s3://bucket` or `s3://bucket/prefix`',
    meaning:
      'keep uploads in an S3-compatible bucket shared by every node; the endpoint, region and credentials come from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (path-style addressing when set, for self-hosted stores), `AWS_REGION` (default `us-east-1`), `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`',
    read: (raw, { env }) => storageUrl(raw, env),
  } satisfies Setting<S3Location | null>,
  defaultModel: text({
    variable: 'CESAR_DEFAULT_MODEL',
    default: 'base',
    accepts: 'a model name',
    pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    flag: { name: 'default-model', value: 'NAME' },
    meaning: 'model for jobs that name none; `cesar serve` installs it when it is missing, unless offline',
  }),
  offline: flag({
    variable: 'CESAR_OFFLINE',
    default: false,
    flag: { name: 'offline' },
    meaning:
      'never fetch models: without its default model or the VAD model, `cesar serve` starts not ready and names the command that installs them, instead of downloading them from `CESAR_MODELS_BASE_URL`',
  }),
  modelsBaseUrl: {
    variable: 'CESAR_MODELS_BASE_URL',
    shownDefault: `\`${OFFICIAL_RELEASES_URL}\``,
    accepts: 'an http or https URL',
    meaning: 'where `cesar serve` and `cesar models download` fetch the release files (a mirror, for machines that cannot reach GitHub)',
    read: (raw) => httpUrl(raw, 'CESAR_MODELS_BASE_URL') ?? OFFICIAL_RELEASES_URL,
  } satisfies Setting<string>,
  maxWorkers: integer({
    variable: 'CESAR_MAX_WORKERS',
    default: 2,
    min: 1,
    max: 64,
    flag: { name: 'workers', value: 'N' },
    meaning: 'worker processes, each decoding one job at a time',
  }),
  maxUploadBytes: maxUploadSize,
  uploadIdleTimeoutMs: integer({
    variable: 'CESAR_UPLOAD_IDLE_TIMEOUT_MS',
    default: 15_000,
    min: 100,
    max: 600_000,
    meaning: 'a request body (an upload, a JSON submission) whose client sends nothing for this long is cut with 408 and its partial file deleted',
  }),
  maxConcurrentUploads: integer({
    variable: 'CESAR_MAX_CONCURRENT_UPLOADS',
    default: 32,
    min: 1,
    max: 10_000,
    meaning: 'uploads received at once; past it an upload is answered 503 with `Retry-After` before its body is read',
  }),
  maxAttempts: integer({ variable: 'CESAR_MAX_ATTEMPTS', default: 3, min: 1, max: 100, meaning: 'attempts for a job whose failure may be temporary (a crashed worker)' }),
  leaseMs: integer({
    variable: 'CESAR_LEASE_MS',
    // 10 s: pg-boss's smallest heartbeat window, so a dead worker's job runs again elsewhere within ~12 s.
    default: 10_000,
    min: 500,
    max: 3_600_000,
    meaning: "a running job's lease; a job whose worker stops renewing it is taken back",
  }),
  shutdownGraceMs: integer({
    variable: 'CESAR_SHUTDOWN_GRACE_MS',
    default: 25_000,
    min: 0,
    max: 3_600_000,
    meaning: 'on SIGTERM, how long running jobs may finish before they are released for the next start',
  }),
  ffmpegPath: {
    variable: 'CESAR_FFMPEG_PATH',
    shownDefault: 'bundled ffmpeg',
    accepts: 'a path',
    meaning: 'another ffmpeg binary to use (the bundled one is a 2018 static build)',
    read: (raw, { cwd }) => (blank(raw) ? null : path.resolve(cwd, raw.trim())),
  } satisfies Setting<string | null>,
  ffmpegTimeoutMs: integer({ variable: 'CESAR_FFMPEG_TIMEOUT_MS', default: 600_000, min: 1000, max: 86_400_000, meaning: 'wall-clock limit of decoding one file' }),
  maxDurationSeconds: integer({
    variable: 'CESAR_MAX_DURATION_SECONDS',
    default: 4 * 3600,
    min: 0,
    max: 7 * 86_400,
    meaning: 'longest accepted media; longer files fail with `media_too_long` (`0`: no limit)',
  }),
  urlAllowPrivateNetworks: flag({
    variable: 'CESAR_URL_ALLOW_PRIVATE_NETWORKS',
    default: false,
    meaning:
      'let submitted URLs reach private, CGNAT, unique-local and loopback (`127.0.0.0/8`, `[::1]`) addresses (LAN deployments); metadata, link-local and multicast stay refused',
  }),
  urlAllowedPorts: {
    variable: 'CESAR_URL_ALLOWED_PORTS',
    shownDefault: `\`${[...DEFAULT_ALLOWED_PORTS].join(',')}\``,
    accepts: 'ports and ranges, comma-separated: `80,443,8000-8999`',
    meaning: 'ports a submitted URL and each of its redirects may use',
    read(raw): ReadonlySet<number> {
      if (blank(raw)) {
        return DEFAULT_ALLOWED_PORTS;
      }
      try {
        return parsePortList(raw);
      } catch (error) {
        throw new ConfigError('CESAR_URL_ALLOWED_PORTS', (error as Error).message);
      }
    },
  } satisfies Setting<ReadonlySet<number>>,
  maxDownloadBytes: {
    ...maxDownloadSize,
    shownDefault: 'upload limit',
    read: (raw, context) => (blank(raw) ? maxUploadSize.read(context.env[maxUploadSize.variable], context) : maxDownloadSize.read(raw, context)),
  } satisfies Setting<number>,
  downloadTimeoutMs: integer({
    variable: 'CESAR_DOWNLOAD_TIMEOUT_MS',
    default: 300_000,
    min: 1000,
    max: 86_400_000,
    meaning: 'wall-clock limit of one download, redirects included',
  }),
  logFormat: choice({
    variable: 'CESAR_LOG_FORMAT',
    default: 'json',
    values: ['json', 'pretty'],
    flag: { name: 'log-format', value: 'FORMAT' },
    meaning: '`json` lines, or `pretty` for a terminal (`cesar serve` picks `pretty` itself when its output is a terminal and the variable is unset)',
  }),
  retryBaseMs: integer({
    variable: 'CESAR_RETRY_BASE_MS',
    default: 5000,
    min: 10,
    max: 3_600_000,
    meaning: 'delay before the 2nd attempt of a job whose failure may be temporary; doubles each attempt, ±25 % jitter',
  }),
  retryMaxMs: integer({ variable: 'CESAR_RETRY_MAX_MS', default: 600_000, min: 10, max: 86_400_000, meaning: 'the longest delay between two attempts' }),
  retentionSeconds: integer({
    variable: 'CESAR_RETENTION_SECONDS',
    default: 7 * 86_400,
    shownDefault: '`604800` (7 days)',
    min: 1,
    max: 315_360_000,
    meaning: 'how long finished jobs, their transcripts and files are kept (a job may ask for another time with `retention_seconds`)',
  }),
  orphanMinAgeSeconds: integer({
    variable: 'CESAR_ORPHAN_MIN_AGE_SECONDS',
    default: 600,
    min: 1,
    max: 86_400,
    meaning:
      'an upload no job owns (its API node was killed mid-upload) is removed by the next sweep once this old; longer than any upload takes. A lone node with local storage removes them all at start',
  }),
  maxPendingJobs: integer({
    variable: 'CESAR_MAX_PENDING_JOBS',
    default: 10_000,
    min: 1,
    max: 100_000_000,
    meaning: 'past this many pending jobs, `POST /jobs` answers 503 with `Retry-After`',
  }),
  apiKeyDigests: {
    variable: 'CESAR_API_KEYS',
    shownDefault: 'none',
    accepts: 'keys of 16+ characters or `sha256:<64 hex digits>`, comma-separated',
    meaning:
      'when set, every operation but `GET /health` and `GET /health/live` (and the docs) needs one of these keys in `X-API-Key` (on `/v1/*` also as `Authorization: Bearer`), and each job belongs to the key that submitted it (see [API keys](#api-keys-and-who-sees-which-job)). Give a key plain or as the digest (`printf %s "$KEY" | sha256sum`); only digests are kept, compared in constant time, never logged',
    read: (raw): readonly Buffer[] => apiKeyDigests(raw, 'CESAR_API_KEYS'),
  } satisfies Setting<readonly Buffer[]>,
  adminApiKeyDigests: {
    variable: 'CESAR_ADMIN_API_KEYS',
    shownDefault: 'none',
    accepts: 'keys of 16+ characters or `sha256:<64 hex digits>`, comma-separated',
    meaning:
      'admin keys: accepted wherever a key is, and they see, cancel and delete every key\'s jobs (any other key sees only the jobs it submitted)',
    read: (raw): readonly Buffer[] => apiKeyDigests(raw, 'CESAR_ADMIN_API_KEYS'),
  } satisfies Setting<readonly Buffer[]>,
  idempotencyTtlSeconds: integer({
    variable: 'CESAR_IDEMPOTENCY_TTL_SECONDS',
    default: 86_400,
    min: 60,
    max: 30 * 86_400,
    meaning: 'how long an `Idempotency-Key` of `POST /jobs` is remembered',
  }),
  webhookSecrets: {
    variable: 'CESAR_WEBHOOK_SECRETS',
    shownDefault: 'none',
    accepts: 'one or two `whsec_` secrets, base64 of 24 to 64 bytes, comma-separated',
    meaning: 'signing secrets, two while rotating; webhooks are refused without one. Every message carries a signature per secret',
    read: (raw): readonly string[] => webhookSecrets(raw),
  } satisfies Setting<readonly string[]>,
  webhookDefaultUrl: {
    variable: 'CESAR_WEBHOOK_URL',
    shownDefault: 'none',
    accepts: 'an http or https URL; needs `CESAR_WEBHOOK_SECRETS`',
    meaning: 'webhook URL for jobs submitted without `webhook_url`',
    read: (raw) => httpUrl(raw, 'CESAR_WEBHOOK_URL'),
  } satisfies Setting<string | null>,
  webhookRetryBaseMs: integer({
    variable: 'CESAR_WEBHOOK_RETRY_BASE_MS',
    default: 5000,
    min: 10,
    max: 3_600_000,
    meaning: 'first retry delay of a failed delivery; each next one is 4 times longer (±25 % jitter) up to `CESAR_WEBHOOK_RETRY_MAX_MS`',
  }),
  webhookRetryMaxMs: integer({
    variable: 'CESAR_WEBHOOK_RETRY_MAX_MS',
    default: 6 * 3_600_000,
    shownDefault: '`21600000` (6 hours)',
    min: 10,
    max: 86_400_000,
    meaning: 'longest delay between two delivery attempts',
  }),
  webhookMaxAttempts: integer({
    variable: 'CESAR_WEBHOOK_MAX_ATTEMPTS',
    default: 12,
    min: 1,
    max: 100,
    meaning: 'attempts per message (with the defaults about 31 hours of retries)',
  }),
  webhookTimeoutMs: integer({ variable: 'CESAR_WEBHOOK_TIMEOUT_MS', default: 15_000, min: 100, max: 120_000, meaning: 'limit of one delivery request, answer included' }),
  workerMaxJobs: integer({
    variable: 'CESAR_WORKER_MAX_JOBS',
    default: 100,
    min: 0,
    max: 1_000_000,
    meaning: 'worker processes are renewed after this many jobs (`0`: never); the ONNX runtime never gives memory back',
  }),
  workerMaxRssBytes: integer({
    variable: 'CESAR_WORKER_MAX_RSS_MB',
    default: 2048,
    min: 0,
    max: 1_000_000,
    scale: MB,
    meaning: 'worker processes are renewed once one holds this much resident memory after a job (`0`: never)',
  }),
  openAIWaitSeconds: integer({
    variable: 'CESAR_OPENAI_WAIT_SECONDS',
    default: 120,
    min: 1,
    max: 86_400,
    meaning: 'the least time a `/v1/audio/*` request waits for its job before answering 202 with it (more for long audio)',
  }),
};

type Settings = typeof SETTINGS;

export type Config = { readonly [K in keyof Settings]: ReturnType<Settings[K]['read']> };

/** Reads the configuration from `env` (normally `process.env`); relative paths resolve against `cwd`. */
export function loadConfig(env: Env, cwd: string): Config {
  const context = { env, cwd };
  const entries = Object.entries(SETTINGS).map(([key, setting]: [string, Setting<unknown>]) => [key, setting.read(env[setting.variable], context)]);
  const config = Object.fromEntries(entries) as Config;
  if (config.webhookDefaultUrl !== null && config.webhookSecrets.length === 0) {
    throw new ConfigError('CESAR_WEBHOOK_URL', 'webhooks are signed: set CESAR_WEBHOOK_SECRETS too');
  }
  return Object.freeze(config);
}
