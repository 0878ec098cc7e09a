/**
 * @module contract-tests/support/openai-client
 * OpenAI's official SDK pointed at a test server, with every answer also checked against `openapi.yaml` (the
 * SDK's `fetch` is wrapped: a copy of each response goes through the contract check).
 */
import OpenAI from 'openai';

import { checkAgainstSpec } from './contract.ts';

export interface CheckedOpenAI {
  client: OpenAI;
  /** Waits for the contract checks of every answer so far (stream bodies are checked once they end). */
  checked(): Promise<void>;
}

export function openAIClient(baseUrl: string, apiKey = 'not-needed'): CheckedOpenAI {
  const checks: Promise<void>[] = [];
  const checkedFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.protocol.startsWith('http')) {
      // The SDK's own probe of FormData support (a data: URL).
      return response;
    }
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const copy = response.clone();
    checks.push(copy.text().then((text) => void checkAgainstSpec(method, url, { status: copy.status, headers: copy.headers, text })));
    return response;
  };
  return {
    client: new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0, timeout: 300_000, fetch: checkedFetch }),
    async checked() {
      await Promise.all(checks.splice(0));
    },
  };
}
