/**
 * @module net/media-download
 * Downloads the media of a job submitted as a URL, on the worker side, under the URL policy and the
 * download limits. The file lands where an upload would, so decoding does not care where it came from.
 */
import { AppError } from '../errors.ts';
import type { Resolver } from './safe-request.ts';
import { safeDownload } from './safe-request.ts';
import type { UrlPolicy } from './url-policy.ts';

export type MediaDownloader = (url: string, destPath: string, signal: AbortSignal) => Promise<{ bytes: number }>;

export function createMediaDownloader(options: {
  policy: UrlPolicy;
  maxBytes: number;
  totalTimeoutMs: number;
  connectTimeoutMs?: number;
  resolver?: Resolver;
}): MediaDownloader {
  return async (url, destPath, signal) => {
    const { bytes } = await safeDownload(url, destPath, {
      policy: options.policy,
      maxBytes: options.maxBytes,
      totalTimeoutMs: options.totalTimeoutMs,
      signal,
      ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
      ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
    });
    if (bytes === 0) {
      throw new AppError('download_failed', 'The URL answered with an empty body.');
    }
    return { bytes };
  };
}
