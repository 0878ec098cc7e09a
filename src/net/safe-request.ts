/**
 * @module net/safe-request
 * HTTP(S) requests to URLs a client gave us, under a `UrlPolicy`: every resolved address is checked inside the
 * socket's `lookup` hook, so the socket connects only to an address that passed; redirects are followed by hand
 * and each hop is checked again; connect and total timeouts; a byte cap counted while streaming, whatever
 * Content-Length claims. No connection pooling (`agent: false`): a pooled socket would skip the lookup check.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { AppError, isAppError } from '../errors.ts';
import type { UrlPolicy } from './url-policy.ts';

/** Resolves a host name to all its addresses (`dns.lookup` with `all: true` by default). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export interface SafeRequestOptions {
  policy: UrlPolicy;
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: Readonly<Record<string, string>>;
  /** A request body; requests with a body never follow redirects (the 3xx answer is returned). */
  body?: string | Uint8Array;
  /** The most bytes of response body read; more fails with `download_too_large`. */
  maxBytes: number;
  /** Redirects followed (GET and HEAD only), each hop checked again. */
  maxRedirects?: number;
  connectTimeoutMs?: number;
  /** Everything, from the first lookup to the last body byte, across redirects. */
  totalTimeoutMs?: number;
  signal?: AbortSignal;
  resolver?: Resolver;
}

export interface SafeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
export const DEFAULT_MAX_REDIRECTS = 3;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_TOTAL_TIMEOUT_MS = 120_000;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for `http.request` that refuses the whole name if any of its addresses is refused. */
function checkedLookup(policy: UrlPolicy, resolver: Resolver) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    const choose = (addresses: LookupAddress[]): LookupAddress[] => {
      for (const { address } of addresses) {
        policy.checkAddress(address, hostname);
      }
      const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
      const usable = family === 4 || family === 6 ? addresses.filter((entry) => entry.family === family) : addresses;
      if (usable.length === 0) {
        throw new AppError('download_failed', `The host ${hostname} has no address.`);
      }
      return usable;
    };
    resolver(hostname).then(
      (addresses) => {
        let usable: LookupAddress[];
        try {
          usable = choose(addresses);
        } catch (error) {
          callback(error as AppError, '');
          return;
        }
        const [first] = usable;
        if (options.all === true || first === undefined) {
          callback(null, usable);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: unknown) => {
        callback(new AppError('download_failed', `The host ${hostname} could not be resolved.`, {}, { cause: error }), '');
      },
    );
  };
}

function describeFailure(error: unknown, url: URL): AppError {
  if (isAppError(error)) {
    return error;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return new AppError('download_failed', `Fetching ${url.host} failed${typeof code === 'string' ? ` (${code})` : ''}.`, {}, { cause: error });
}

/** Sends one request and resolves with the response head; the body is left unread. */
function sendOnce(url: URL, options: SafeRequestOptions, signal: AbortSignal, connectTimeoutMs: number): Promise<IncomingMessage> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const request = transport.request(url, {
      method: options.method ?? 'GET',
      agent: false,
      signal,
      lookup: checkedLookup(options.policy, options.resolver ?? systemResolver),
      headers: { 'user-agent': 'Cesar', accept: '*/*', ...options.headers },
      maxHeaderSize: 16 * 1024,
    });
    const connectTimer = setTimeout(() => {
      request.destroy(new AppError('download_failed', `Connecting to ${url.host} took longer than ${connectTimeoutMs} ms.`));
    }, connectTimeoutMs);
    request.once('socket', (socket) => {
      socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
    });
    request.once('response', (response) => {
      clearTimeout(connectTimer);
      resolve(response);
    });
    request.once('error', (error) => {
      clearTimeout(connectTimer);
      reject(error);
    });
    request.end(options.body);
  });
}

/** Fails fast when the declared length is over the cap; the streaming count below holds when it lies. */
function checkDeclaredLength(response: IncomingMessage, maxBytes: number): void {
  const declared = Number(response.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.destroy();
    throw tooLarge(maxBytes);
  }
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('download_too_large', `The download is larger than the limit of ${maxBytes} bytes.`, { limit_bytes: maxBytes });
}

/** A pass-through that fails once more than `maxBytes` went through it. */
function byteCap(maxBytes: number): Transform & { bytes: number } {
  let bytes = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        callback(tooLarge(maxBytes));
        return;
      }
      callback(null, chunk);
    },
  });
  return Object.defineProperty(transform, 'bytes', { get: () => bytes }) as Transform & { bytes: number };
}

/**
 * Runs `consume` on the final response (after redirects) under the combined signal and timeouts, and turns
 * every failure into a registered code; the caller's own abort is rethrown as its reason.
 */
async function withResponse<T>(
  raw: string | URL,
  options: SafeRequestOptions,
  consume: (response: IncomingMessage, url: URL, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const totalTimeoutMs = options.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(totalTimeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const maxRedirects = options.body === undefined ? (options.maxRedirects ?? DEFAULT_MAX_REDIRECTS) : 0;
  let url = options.policy.checkUrl(raw);
  try {
    for (let hop = 0; ; hop++) {
      signal.throwIfAborted();
      const response = await sendOnce(url, options, signal, connectTimeoutMs);
      const location = response.headers.location;
      if (REDIRECTS.has(response.statusCode ?? 0) && location !== undefined && (options.method ?? 'GET') !== 'POST') {
        response.destroy();
        if (hop >= maxRedirects) {
          throw new AppError('download_failed', `The URL redirects more than ${maxRedirects} times.`);
        }
        url = options.policy.checkUrl(new URL(location, url));
        continue;
      }
      return await consume(response, url, signal);
    }
  } catch (error) {
    if (options.signal?.aborted) {
      throw options.signal.reason;
    }
    if (timeout.aborted && !isAppError(error)) {
      throw new AppError('download_failed', `Fetching the URL took longer than ${totalTimeoutMs} ms.`);
    }
    throw describeFailure(error, url);
  }
}

/** A request whose (capped) body is read into memory; any status is returned. For small answers (webhooks). */
export function safeRequest(raw: string | URL, options: SafeRequestOptions): Promise<SafeResponse & { body: Buffer }> {
  return withResponse(raw, options, async (response, url) => {
    checkDeclaredLength(response, options.maxBytes);
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        response.destroy();
        throw tooLarge(options.maxBytes);
      }
      chunks.push(chunk);
    }
    return { status: response.statusCode ?? 0, headers: response.headers, url, body: Buffer.concat(chunks) };
  });
}

/**
 * Downloads a URL to `destPath` (created, never overwritten). A non-2xx answer is `download_failed`; the file
 * is removed on any failure.
 */
export async function safeDownload(raw: string | URL, destPath: string, options: SafeRequestOptions): Promise<SafeResponse & { bytes: number }> {
  try {
    return await withResponse(raw, options, async (response, url, signal) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        response.destroy();
        throw new AppError('download_failed', `The server answered ${status} for ${url.host}${url.pathname}.`, { upstream_status: status });
      }
      checkDeclaredLength(response, options.maxBytes);
      const cap = byteCap(options.maxBytes);
      await pipeline(response, cap, createWriteStream(destPath, { flags: 'wx' }), { signal });
      return { status, headers: response.headers, url, bytes: cap.bytes };
    });
  } catch (error) {
    await rm(destPath, { force: true });
    throw error;
  }
}
