/**
 * @module http/handlers/list-jobs
 * `GET /jobs`: newest first, paged by an opaque cursor (stable while new jobs arrive), by offset, or by both (the
 * offset then counts from the cursor).
 */
import { AppError } from '../../errors.ts';
import { jobView } from '../../jobs/job-view.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

/**
 * A job's place in the listing, in base 36. Every string the spec's pattern (`^[0-9a-z]{1,10}$`) admits is a
 * cursor: 36^10 is below 2^53, so each decodes to an exact position.
 */
const encodeCursor = (seq: number): string => seq.toString(36);

function decodeCursor(cursor: string): number {
  if (!/^[0-9a-z]{1,10}$/.test(cursor)) {
    throw new AppError('invalid_cursor', 'The cursor is not one this server returned.');
  }
  return parseInt(cursor, 36);
}

export function listJobsHandler(deps: ApiDeps): OperationHandler<'listJobs'> {
  return async (c, _req, res) => {
    const { status, limit = 20, offset, cursor } = c.request.query;
    // An admin key, or keys off: every job; any other key: its own.
    const caller = res.locals.caller;
    const rows = await deps.store.list({
      status,
      limit: limit + 1,
      offset,
      beforeSeq: cursor === undefined ? undefined : decodeCursor(cursor),
      submittedBy: caller?.seesAll === false ? caller.scope : undefined,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const positions = await deps.store.queuePositions(page);
    const now = deps.clock.now();
    sendJson(res, 'listJobs', 200, {
      jobs: page.map((job) => jobView(job, { queuePosition: positions.get(job.id) ?? null }, now)),
      next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
    });
  };
}
