/**
 * @module http/handlers/get-health
 * `GET /health`: cheap checks only (a directory scan and a metadata read), so it answers while workers decode.
 * It is open to all; with keys configured, where the models live is told only to a request with a valid key.
 */
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler, Schemas } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export function getHealthHandler(deps: ApiDeps): OperationHandler<'getHealth'> {
  return async (_c, _req, res) => {
    // Keys off: every operation is open (GET /models too), so there is nothing to hide.
    const where = res.locals.caller === undefined ? 'the models directory' : deps.models.modelsDir;
    const scan = await deps.models.scan();
    const broken = scan.broken.find((model) => model.name === deps.defaultModel);
    const checks: Schemas['Health']['checks'] = [
      {
        name: 'default_model',
        ok: scan.models.some((model) => model.name === deps.defaultModel),
        detail: broken
          ? `${deps.defaultModel}: ${broken.reason.replaceAll(deps.models.modelsDir, where)}`
          : `${deps.defaultModel} in ${where}`,
      },
      {
        name: 'vad_model',
        ok: scan.vadModel !== null,
        detail: scan.vadModel === null ? `silero_vad.onnx is missing from ${where}` : where === deps.models.modelsDir ? scan.vadModel : 'silero_vad.onnx',
      },
    ];
    const ready = checks.every((check) => check.ok);
    sendJson(res, 'getHealth', ready ? 200 : 503, {
      status: ready ? 'ready' : 'not_ready',
      checks,
      workers: deps.workers.workers().map((worker) => ({
        model: worker.model,
        rss_bytes: worker.rssBytes,
        peak_rss_bytes: worker.peakRssBytes,
        jobs: worker.jobs,
      })),
      workers_recycled: deps.workers.recycled,
    });
  };
}
