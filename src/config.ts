/**
 * @module config
 * Turns the environment into a frozen, typed configuration, or fails with a message that names the variable.
 */
import path from 'node:path';

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly modelsDir: string;
  readonly maxWorkers: number;
  readonly defaultModel: string;
  readonly maxUploadBytes: number;
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
  return Object.freeze({
    host,
    port: readInt(env, 'CESAR_PORT', 8000, 0, 65535),
    dataDir: path.resolve(cwd, readString(env, 'CESAR_DATA_DIR', './data')),
    modelsDir: path.resolve(cwd, readString(env, 'CESAR_MODELS_DIR', './models')),
    maxWorkers: readInt(env, 'CESAR_MAX_WORKERS', 2, 1, 64),
    defaultModel,
    maxUploadBytes: readInt(env, 'CESAR_MAX_UPLOAD_SIZE_MB', 500, 1, 1_000_000) * 1024 * 1024,
    leaseMs: readInt(env, 'CESAR_LEASE_MS', 30_000, 500, 3_600_000),
    maxAttempts: readInt(env, 'CESAR_MAX_ATTEMPTS', 3, 1, 100),
    shutdownGraceMs: readInt(env, 'CESAR_SHUTDOWN_GRACE_MS', 25_000, 0, 3_600_000),
    ffmpegPath: ffmpegPath === undefined || ffmpegPath === '' ? null : path.resolve(cwd, ffmpegPath),
    ffmpegTimeoutMs: readInt(env, 'CESAR_FFMPEG_TIMEOUT_MS', 600_000, 1000, 86_400_000),
    logFormat,
    workerMaxJobs: readInt(env, 'CESAR_WORKER_MAX_JOBS', 100, 0, 1_000_000),
    workerMaxRssBytes: readInt(env, 'CESAR_WORKER_MAX_RSS_MB', 2048, 0, 1_000_000) * 1024 * 1024,
  });
}
