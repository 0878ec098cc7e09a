/**
 * @module http/handlers/get-liveness
 * `GET /health/live`: answers as long as the event loop does; no model, disk or worker check, so a supervisor
 * never restarts a service that is only waiting for a model to be installed.
 */
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export function getLivenessHandler(deps: ApiDeps): OperationHandler<'getLiveness'> {
  return (_c, _req, res) => {
    sendJson(res, 'getLiveness', 200, { status: 'alive', uptime_seconds: Math.max(0, (deps.clock.now() - deps.startedMs) / 1000) });
    return Promise.resolve();
  };
}
