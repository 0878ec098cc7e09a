import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { parseEventStream } from './support/contract.ts';
import { jobForm, requireModel, startServer } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

describe('live job events (SSE)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a client sees status, progress and segments in order, ending with the final status, and a reconnect resumes', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const created = await server.client.post('/jobs', { body: await jobForm('jfk.ogg') });
    const id = (created.json as JobBody).id;

    // Live: read the first event, then drop the connection.
    const controller = new AbortController();
    const live = await fetch(`${server.client.baseUrl}/jobs/${id}/events`, { signal: controller.signal });
    assert.equal(live.headers.get('content-type')?.split(';')[0], 'text/event-stream');
    const reader = live.body?.getReader();
    assert.ok(reader);
    let head = '';
    while (!head.includes('\n\n')) {
      const chunk = await reader.read();
      assert.ok(!chunk.done, 'the stream stays open while the job runs');
      head += Buffer.from(chunk.value).toString('utf8');
    }
    controller.abort();
    const first = parseEventStream(head.slice(0, head.indexOf('\n\n') + 2))[0];
    assert.equal(first?.event, 'status');
    assert.ok(first.id);

    // Reconnect after that event: the rest, until the job has ended (the contract client checks every event).
    const rest = await server.client.get(`/jobs/${id}/events`, { headers: { 'Last-Event-ID': first.id } });
    assert.equal(rest.status, 200);
    const events = parseEventStream(rest.text);
    const full = parseEventStream((await server.client.get(`/jobs/${id}/events`)).text);
    assert.deepEqual([first, ...events], full, 'the first event and the resumed rest are the whole stream');

    const ids = full.map((event) => Number(event.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids increase');
    const statuses = full.filter((event) => event.event === 'status').map((event) => (JSON.parse(event.data) as { status: string }).status);
    assert.deepEqual(statuses.slice(-2), ['processing', 'completed']);
    assert.equal(full.at(-1)?.event, 'status', 'the stream ends with the final status');
    const progress = full.filter((event) => event.event === 'progress').map((event) => (JSON.parse(event.data) as { progress: number }).progress);
    assert.ok(progress.length >= 1, 'progress is reported');
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
    const segments = full.filter((event) => event.event === 'segment').map((event) => JSON.parse(event.data) as { text: string });
    const result = await server.client.get(`/jobs/${id}/result`);
    assert.equal(segments.map((segment) => segment.text.trim()).join(' ').replace(/\s+/g, ' '), result.text.trim().replace(/\s+/g, ' '), 'the segments are the transcript');

    // After the last event there is nothing more, and the stream ends at once.
    const after = await server.client.get(`/jobs/${id}/events?last_event_id=${full.at(-1)?.id}`);
    assert.deepEqual(parseEventStream(after.text), []);
  });

  test('events of an unknown job are 404, and a malformed id is 400', async () => {
    assert.equal((await server.client.get(`/jobs/${randomUUID()}/events`)).status, 404);
    assert.equal((await server.client.get('/jobs/nope/events')).status, 400);
  });
});
