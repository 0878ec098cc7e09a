/**
 * @module transcription/model-download
 * Installs official sherpa-onnx release files into the models directory: a Whisper archive
 * (`sherpa-onnx-whisper-<name>.tar.bz2`) or the Silero VAD model (`silero_vad.onnx`).
 *
 * Everything is downloaded and unpacked in a temporary folder inside the models directory, checked (the
 * checksum when one is given, the archive's layout, the encoder's metadata) and only then renamed into place:
 * a rename within one file system is atomic, so an interrupted download, a corrupt archive or a killed process
 * never leaves a half-installed model that the server would try to load. The temporary folder's name starts
 * with a dot, which the model catalog ignores.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

import * as tar from 'tar';
import bz2 from 'unbzip2-stream';

import { readOnnxMetadata } from './onnx-metadata.ts';
import { createModelCatalog, VAD_MODEL_FILE } from './models.ts';
import type { InstalledModel } from './models.ts';

/** How long a download may wait for the server to answer, or for the next bytes, unless told otherwise. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 15_000;
export const VAD_NAMES: readonly string[] = ['silero_vad', 'vad'];
const MODEL_DIR_PREFIX = 'sherpa-onnx-whisper-';
const TEMP_PREFIX = '.cesar-download-';

export type DownloadFailure = 'unreachable' | 'http' | 'interrupted' | 'checksum' | 'corrupt' | 'exists' | 'aborted';

export class DownloadError extends Error {
  readonly kind: DownloadFailure;
  readonly url: string;
  constructor(kind: DownloadFailure, url: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DownloadError';
    this.kind = kind;
    this.url = url;
  }
}

export interface DownloadProgress {
  receivedBytes: number;
  totalBytes: number | null;
}

export interface InstallOptions {
  modelsDir: string;
  baseUrl: string;
  /** Expected SHA-256 of the downloaded file, hex; checked when given. */
  sha256?: string | undefined;
  /** Replace an installed copy instead of refusing. */
  force?: boolean | undefined;
  signal: AbortSignal;
  /** How long to wait for the server to start answering; offline, this is how fast the command gives up. */
  connectTimeoutMs: number;
  /** A download that receives nothing for this long is abandoned. */
  idleTimeoutMs: number;
  onProgress?: (progress: DownloadProgress) => void;
}

export function isValidModelName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !name.includes('..');
}

export function modelArchiveUrl(baseUrl: string, name: string): string {
  return new URL(`${MODEL_DIR_PREFIX}${name}.tar.bz2`, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).href;
}

export function vadUrl(baseUrl: string): string {
  return new URL(VAD_MODEL_FILE, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).href;
}

/** What to do by hand when the release site cannot be reached: where to download `name` and where to put it. */
export function manualInstallHint(name: string, baseUrl: string, modelsDir: string): string {
  if (VAD_NAMES.includes(name)) {
    return `To install it by hand, download ${vadUrl(baseUrl)} on a machine that is online and copy it to ${path.join(modelsDir, VAD_MODEL_FILE)}.`;
  }
  return (
    `To install it by hand, download ${modelArchiveUrl(baseUrl, name)} on a machine that is online and unpack it ` +
    `into ${modelsDir} (tar xjf FILE -C ${modelsDir}), so that ${path.join(modelsDir, `${MODEL_DIR_PREFIX}${name}`, `${name}-encoder.int8.onnx`)} ` +
    `exists; put ${vadUrl(baseUrl)} next to it as ${path.join(modelsDir, VAD_MODEL_FILE)}.`
  );
}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT']);

function networkCode(error: unknown): string | null {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) {
      return code;
    }
  }
  return null;
}

/** Streams `url` into `file`, hashing on the way; throws a DownloadError for every way this can go wrong. */
async function download(url: string, file: string, options: InstallOptions): Promise<{ sha256: string; bytes: number }> {
  const idle = new AbortController();
  const connect = AbortSignal.timeout(options.connectTimeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.any([options.signal, connect, idle.signal]), redirect: 'follow' });
  } catch (error) {
    if (options.signal.aborted) {
      throw new DownloadError('aborted', url, 'the download was interrupted', { cause: error });
    }
    const reason = connect.aborted ? `no answer within ${options.connectTimeoutMs} ms` : (networkCode(error) ?? (error as Error).message);
    throw new DownloadError('unreachable', url, `cannot reach ${url} (${reason})`, { cause: error });
  }
  if (!response.ok || response.body === null) {
    throw new DownloadError('http', url, `${url} answered ${response.status} ${response.statusText}`);
  }
  const length = Number(response.headers.get('content-length'));
  const totalBytes = Number.isSafeInteger(length) && length > 0 ? length : null;
  const hash = createHash('sha256');
  let receivedBytes = 0;
  let idleTimer = setTimeout(() => idle.abort(), options.idleTimeoutMs);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => idle.abort(), options.idleTimeoutMs);
      receivedBytes += chunk.length;
      hash.update(chunk);
      options.onProgress?.({ receivedBytes, totalBytes });
      callback(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), meter, createWriteStream(file));
  } catch (error) {
    if (options.signal.aborted) {
      throw new DownloadError('aborted', url, 'the download was interrupted', { cause: error });
    }
    const why = idle.signal.aborted ? `nothing received for ${options.idleTimeoutMs} ms` : (error as Error).message;
    throw new DownloadError('interrupted', url, `the download of ${url} broke off after ${receivedBytes} bytes (${why})`, { cause: error });
  } finally {
    clearTimeout(idleTimer);
  }
  if (totalBytes !== null && receivedBytes !== totalBytes) {
    throw new DownloadError('interrupted', url, `the download of ${url} stopped at ${receivedBytes} of ${totalBytes} bytes`);
  }
  const sha256 = hash.digest('hex');
  if (options.sha256 !== undefined && options.sha256.toLowerCase() !== sha256) {
    throw new DownloadError('checksum', url, `${url} has SHA-256 ${sha256}, expected ${options.sha256.toLowerCase()}`);
  }
  return { sha256, bytes: receivedBytes };
}

/** The system's bzip2, when there is one: about seven times faster than the JavaScript decoder on a large model. */
export async function findSystemBzip2(searchPath = process.env.PATH ?? ''): Promise<string | null> {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'bzip2');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return null;
}

/**
 * Unpacks regular files and folders only: no links, no device files, nothing outside `dir` (tar's default).
 * `bzip2Path` null decodes in JavaScript; otherwise that bzip2 decodes and must exit 0, so a damaged archive
 * fails here even when the part that was decoded happens to end at a file boundary.
 */
export async function extractTarBz2(archive: string, dir: string, bzip2Path: string | null): Promise<void> {
  await mkdir(dir, { recursive: true });
  const unpack = () => tar.x({ cwd: dir, strict: true, preserveOwner: false, filter: (_path, entry) => 'type' in entry && (entry.type === 'File' || entry.type === 'Directory') });
  if (bzip2Path === null) {
    await pipeline(createReadStream(archive), bz2(), unpack());
    return;
  }
  const child = spawn(bzip2Path, ['-dc', archive], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text.slice(0, 4096)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  try {
    await pipeline(child.stdout, unpack());
  } catch (error) {
    child.kill('SIGKILL');
    await exited.catch(() => undefined);
    throw error;
  }
  const code = await exited;
  if (code !== 0) {
    throw new Error(`bzip2 exited with ${code}: ${stderr.trim().split('\n').slice(-2).join(' ')}`);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function withTempDir<T>(modelsDir: string, work: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(modelsDir, { recursive: true });
  const dir = await mkdtemp(path.join(modelsDir, TEMP_PREFIX));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Moves `source` to `target`; with `force`, an existing target is swapped out and removed after the move. */
async function installInPlace(source: string, target: string, tempDir: string, force: boolean): Promise<void> {
  if (await exists(target)) {
    if (!force) {
      throw new DownloadError('exists', '', `${target} is already installed (use --force to replace it)`);
    }
    const old = path.join(tempDir, 'replaced');
    await rename(target, old);
  }
  await rename(source, target);
}

/** Downloads, checks and installs the Whisper model `name`; resolves with the installed model as the catalog sees it. */
export async function installWhisperModel(name: string, options: InstallOptions): Promise<InstalledModel> {
  const url = modelArchiveUrl(options.baseUrl, name);
  const target = path.join(options.modelsDir, `${MODEL_DIR_PREFIX}${name}`);
  if (!options.force && (await exists(target))) {
    throw new DownloadError('exists', url, `${target} is already installed (use --force to replace it)`);
  }
  return withTempDir(options.modelsDir, async (tempDir) => {
    const archive = path.join(tempDir, 'archive.tar.bz2');
    await download(url, archive, options);
    const unpacked = path.join(tempDir, 'unpacked');
    try {
      await extractTarBz2(archive, unpacked, await findSystemBzip2());
    } catch (error) {
      throw new DownloadError('corrupt', url, `${url} is not a readable .tar.bz2 archive (${(error as Error).message})`, { cause: error });
    }
    await rm(archive, { force: true });
    const scan = await createModelCatalog(unpacked).scan();
    const model = scan.models.find((candidate) => candidate.name === name);
    if (!model) {
      const broken = scan.broken.find((candidate) => candidate.name === name);
      const reason = broken ? broken.reason : `it has no folder ${MODEL_DIR_PREFIX}${name}/`;
      throw new DownloadError('corrupt', url, `the archive from ${url} does not hold a usable model: ${reason}`);
    }
    await installInPlace(model.dir, target, tempDir, options.force ?? false);
    const installed = (await createModelCatalog(options.modelsDir).scan()).models.find((candidate) => candidate.name === name);
    if (!installed) {
      throw new DownloadError('corrupt', url, `${target} was installed but cannot be read back`);
    }
    return installed;
  });
}

/** Downloads, checks and installs `silero_vad.onnx`; resolves with its path. */
export async function installVadModel(options: InstallOptions): Promise<string> {
  const url = vadUrl(options.baseUrl);
  const target = path.join(options.modelsDir, VAD_MODEL_FILE);
  if (!options.force && (await exists(target))) {
    throw new DownloadError('exists', url, `${target} is already installed (use --force to replace it)`);
  }
  return withTempDir(options.modelsDir, async (tempDir) => {
    const file = path.join(tempDir, VAD_MODEL_FILE);
    const { bytes } = await download(url, file, options);
    try {
      // Parsing the model's header proves it is an ONNX file and not, say, an HTML error page.
      await readOnnxMetadata(file);
    } catch (error) {
      throw new DownloadError('corrupt', url, `${url} is not an ONNX model (${bytes} bytes; ${(error as Error).message})`, { cause: error });
    }
    await installInPlace(file, target, tempDir, options.force ?? false);
    return target;
  });
}
