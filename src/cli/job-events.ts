/**
 * @module cli/job-events
 * Follows a job's server-sent events (`GET /jobs/{id}/events`) when the server offers them. A server without
 * the endpoint, or a stream that breaks, is not an error: the caller polls the job either way.
 */
export type JobEvent = Record<string, unknown>;

/** Reads events until `onEvent` returns true, the stream ends, fails or `signal` aborts; resolves whether events came. */
export async function followJobEvents(url: string, signal: AbortSignal, onEvent: (event: JobEvent) => boolean): Promise<boolean> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'text/event-stream' }, signal });
  } catch {
    return false;
  }
  if (!response.ok || !response.body || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    await response.body?.cancel();
    return false;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return true;
      }
      buffer += value;
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        let event: unknown;
        try {
          event = JSON.parse(data);
        } catch {
          continue;
        }
        if (typeof event === 'object' && event !== null && onEvent(event as JobEvent)) {
          return true;
        }
      }
    }
  } catch {
    return false;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
