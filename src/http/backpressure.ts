/**
 * @module http/backpressure
 * Refuses a submission before its upload is read when too many jobs are already waiting: accepting work the
 * queue cannot drain only fills the disk.
 */
import type { RequestHandler } from 'express';

import { AppError } from '../errors.ts';
import type { ApiDeps } from './deps.ts';
import { sendProblem } from './problem.ts';

/** What a refused client is told to wait: about the time a worker needs for a short recording. */
export const QUEUE_FULL_RETRY_AFTER_SECONDS = 30;

export function queueBackpressure(deps: Pick<ApiDeps, 'store' | 'maxPendingJobs' | 'logger'>): RequestHandler {
  return (req, res, next) => {
    // A retry of a submission already answered gets its job back, full queue or not: it adds no work.
    if (res.locals.idempotency?.claim.kind === 'done') {
      next();
      return;
    }
    deps.store.pendingCount(deps.maxPendingJobs).then(
      (pending) => {
        if (pending < deps.maxPendingJobs) {
          next();
          return;
        }
        deps.logger.warn('submission refused: queue full', { pending, max_pending_jobs: deps.maxPendingJobs });
        res.setHeader('Retry-After', String(QUEUE_FULL_RETRY_AFTER_SECONDS));
        // The body is not read; close the connection rather than leave it half-consumed for the next request.
        res.setHeader('Connection', 'close');
        req.resume();
        sendProblem(res, new AppError('queue_full', `${pending} jobs are waiting, the most this server holds; try again later.`), deps.logger, req.originalUrl);
      },
      (error: unknown) => next(error),
    );
  };
}
