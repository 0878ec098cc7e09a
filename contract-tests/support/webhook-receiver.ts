/**
 * A webhook receiver on loopback for the tests: it answers with the scripted statuses in turn (then the last one)
 * and keeps every request it got.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';

export interface ReceivedWebhook {
  headers: Record<string, string>;
  body: string;
  /** The status it was answered with. */
  answered: number;
}

export type ScriptedAnswer = number | { status: number; headers: Record<string, string> };

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(script: readonly ScriptedAnswer[] = [200]): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const answer = script[Math.min(received.length, script.length - 1)] ?? 200;
      const answered = typeof answer === 'number' ? answer : answer.status;
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), answered });
      res.writeHead(answered, typeof answer === 'number' ? {} : answer.headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise((resolve) => {
        // Keep-alive connections of the server under test would hold the close back.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
