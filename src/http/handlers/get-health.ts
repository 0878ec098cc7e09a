/**
 * @module http/handlers/get-health
 * `GET /health`: cheap checks only (a directory scan and a metadata read), so it answers while workers decode.
 * It is open to all; with keys configured, where the models live is told only to a request with a valid key.
 * An API node (`--role api`) has no model checks: it needs no models.
 */
import { VAD_NAME } from '../../transcription/model-installer.ts';
import type { ApiDeps } from '../deps.ts';
import type { OperationHandler, Schemas } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export function getHealthHandler(deps: ApiDeps): OperationHandler<'getHealth'> {
  return async (_c, _req, res) => {
    if (deps.role === 'api') {
      // An API node transcribes nothing: models are the workers' to have, so their absence here is no fault.
      sendJson(res, 'getHealth', 200, { status: 'ready', role: deps.role, checks: [] });
      return;
    }
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
    if (deps.database) {
      const reachable = await deps.database.reachable();
      checks.push({
        name: 'database',
        ok: reachable,
        detail: reachable ? deps.database.description : `${deps.database.description} does not answer; jobs wait until it does`,
      });
    }
    const ready = checks.every((check) => check.ok);
    // A download that has just put its file in place may not have reported its end yet: ready wins.
    const download = ready ? null : deps.modelDownload();
    if (download !== null) {
      const check = checks.find((each) => each.name === (download.model === VAD_NAME ? 'vad_model' : 'default_model'));
      if (check && !check.ok) {
        check.detail = `downloading ${download.url} into ${deps.models.modelsDir}`;
      }
    }
    sendJson(res, 'getHealth', ready ? 200 : 503, {
      status: ready ? 'ready' : 'not_ready',
      role: deps.role,
      checks,
      workers: deps.workers.workers().map((worker) => ({
        model: worker.model,
        rss_bytes: worker.rssBytes,
        peak_rss_bytes: worker.peakRssBytes,
        jobs: worker.jobs,
      })),
      workers_recycled: deps.workers.recycled,
      ...(download !== null && {
        download: {
          model: download.model,
          url: download.url,
          received_bytes: download.receivedBytes,
          total_bytes: download.totalBytes,
          percent: download.totalBytes ? Math.min(100, Math.round((download.receivedBytes / download.totalBytes) * 1000) / 10) : null,
        },
      }),
    });
  };
}
