/**
 * @module http/handlers/list-jobs
 * `GET /jobs`: newest first, paged by offset or by an opaque cursor (stable while new jobs arrive).
 */
import { AppError } from '../../errors.ts';
import { jobView } from '../../jobs/job-view.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

const encodeCursor = (seq: number): string => Buffer.from(`s${seq}`).toString('base64url');

function decodeCursor(cursor: string): number {
  const match = /^s(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match?.[1]) {
    throw new AppError('invalid_cursor', 'The cursor is not one this server returned.');
  }
  return Number(match[1]);
}

export function listJobsHandler(deps: ApiDeps): OperationHandler<'listJobs'> {
  return async (c, _req, res) => {
    const { status, limit = 20, offset, cursor } = c.request.query;
    if (offset !== undefined && cursor !== undefined) {
      throw new AppError('invalid_request', 'Use either offset or cursor, not both.');
    }
    const rows = await deps.store.list({
      status,
      limit: limit + 1,
      offset,
      beforeSeq: cursor === undefined ? undefined : decodeCursor(cursor),
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
