/**
 * @module webhooks/signature
 * Standard Webhooks signing: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's bytes (the
 * base64 after `whsec_`). One signature per active secret, space-separated, so receivers can rotate.
 */
import { createHmac, randomUUID } from 'node:crypto';

export function newMessageId(): string {
  return `msg_${randomUUID().replaceAll('-', '')}`;
}

export function signatureHeader(secrets: readonly string[], messageId: string, timestampSeconds: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
      return `v1,${createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')}`;
    })
    .join(' ');
}
