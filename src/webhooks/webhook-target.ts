/**
 * @module webhooks/webhook-target
 * Where webhook requests go through: the server's URL policy (the one audio URLs pass) and its safe request
 * client, so a webhook URL is checked at submission and again, address by address, at every delivery.
 */
import { lookup } from 'node:dns/promises';

import { AppError, isAppError } from '../errors.ts';
import { safeRequest } from '../net/safe-request.ts';
import type { UrlPolicy } from '../net/url-policy.ts';

export interface WebhookResponse {
  status: number;
  retryAfter: string | null;
}

export interface WebhookTarget {
  /** At submission: throws `webhook_url_not_allowed` when the URL or any address of its host is refused. */
  check(url: string): Promise<void>;
  post(url: string, request: { headers: Record<string, string>; body: string; timeoutMs: number; signal: AbortSignal }): Promise<WebhookResponse>;
}

/** Receivers' answers are not used; this only bounds what is read of them. */
const MAX_ANSWER_BYTES = 64 * 1024;

function notAllowed(error: unknown): AppError {
  const detail = isAppError(error) ? error.message : 'The webhook URL cannot be used.';
  return new AppError('webhook_url_not_allowed', detail);
}

export function createWebhookTarget(policy: UrlPolicy): WebhookTarget {
  return {
    async check(url) {
      let parsed: URL;
      try {
        parsed = policy.checkUrl(url);
      } catch (error) {
        throw notAllowed(error);
      }
      const host = parsed.hostname.replace(/^\[|\]$/g, '');
      let addresses: { address: string }[];
      try {
        addresses = await lookup(host, { all: true, verbatim: true });
      } catch {
        throw new AppError('webhook_url_not_allowed', `The host ${host} of the webhook URL could not be resolved.`);
      }
      try {
        for (const { address } of addresses) {
          policy.checkAddress(address, host);
        }
      } catch (error) {
        throw notAllowed(error);
      }
    },
    async post(url, request) {
      const response = await safeRequest(url, {
        policy,
        method: 'POST',
        headers: request.headers,
        body: request.body,
        maxBytes: MAX_ANSWER_BYTES,
        maxRedirects: 0,
        connectTimeoutMs: request.timeoutMs,
        totalTimeoutMs: request.timeoutMs,
        signal: request.signal,
      });
      const retryAfter = response.headers['retry-after'];
      return { status: response.status, retryAfter: typeof retryAfter === 'string' ? retryAfter : null };
    },
  };
}
