/**
 * @module http/handlers/get-health
 * `GET /health`: cheap checks only (a directory scan and a metadata read), so it answers while workers decode.
 */
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler, Schemas } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export function getHealthHandler(deps: ApiDeps): OperationHandler<'getHealth'> {
  return async (_c, _req, res) => {
    const scan = await deps.models.scan();
    const broken = scan.broken.find((model) => model.name === deps.defaultModel);
    const checks: Schemas['Health']['checks'] = [
      {
        name: 'default_model',
        ok: scan.models.some((model) => model.name === deps.defaultModel),
        detail: broken
          ? `${deps.defaultModel}: ${broken.reason}`
          : `${deps.defaultModel} in ${deps.models.modelsDir}`,
      },
      {
        name: 'vad_model',
        ok: scan.vadModel !== null,
        detail: scan.vadModel ?? `silero_vad.onnx is missing from ${deps.models.modelsDir}`,
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
