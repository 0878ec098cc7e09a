/**
 * @module http/handlers/get-job-events
 * `GET /jobs/{id}/events`: Server-Sent Events from the job's event log, resuming after `Last-Event-ID`, ending
 * with the job's final status. New events wake the stream at once; a slow poll also catches changes made by
 * other processes or code paths that do not announce them (and a deleted job, which ends the stream).
 */
import { once } from 'node:events';

import type { JobEventRow } from '../../jobs/job-events.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { findJob } from './get-job.ts';

const POLL_MS = 1000;
/** A comment line now and then keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
const TERMINAL = new Set(['completed', 'failed', 'canceled']);

function isFinal(event: JobEventRow): boolean {
  return event.type === 'status' && TERMINAL.has((JSON.parse(event.data) as { status: string }).status);
}

export function getJobEventsHandler(deps: ApiDeps): OperationHandler<'getJobEvents'> {
  return async (c, req, res) => {
    const job = await findJob(deps, c.request.params.id, res);
    const header = req.headers['last-event-id'];
    const resumeFrom = typeof header === 'string' && header !== '' ? header : c.request.query.last_event_id;
    let lastSeq = resumeFrom === undefined ? 0 : Number(resumeFrom);

    const closed = new AbortController();
    res.on('close', () => closed.abort());
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    if (req.method === 'HEAD') {
      // The stream's headers, without following the job.
      res.end();
      return;
    }
    res.flushHeaders();
    const watch = deps.jobEvents.watch(job.id, closed.signal);
    let quietMs = 0;
    try {
      for (;;) {
        const current = await deps.store.get(job.id);
        if (!current) {
          break;
        }
        // Logged before reading, so a job that has ended has its final event in what is read now.
        await deps.jobEvents.syncStatus(job.id);
        let ended = TERMINAL.has(current.status);
        for (const event of await deps.jobEvents.after(job.id, lastSeq)) {
          res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${event.data}\n\n`);
          lastSeq = event.seq;
          quietMs = 0;
          ended ||= isFinal(event);
        }
        if (ended || closed.signal.aborted) {
          break;
        }
        if (await watch.next(POLL_MS)) {
          quietMs += POLL_MS;
        }
        if (closed.signal.aborted) {
          break;
        }
        if (quietMs >= KEEPALIVE_MS) {
          quietMs = 0;
          if (!res.write(': keep-alive\n\n')) {
            await Promise.race([once(res, 'drain'), once(closed.signal, 'abort')]);
          }
        }
      }
    } finally {
      watch.close();
      res.end();
    }
  };
}
