/**
 * @module http/handlers/list-models
 * `GET /models`: what is installed now (the directory is scanned on each call, so a model copied in later shows),
 * with checksums from the background cache and whether a worker process holds each model.
 */
import path from 'node:path';

import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export function listModelsHandler(deps: ApiDeps): OperationHandler<'listModels'> {
  return async (_c, _req, res) => {
    const { models } = await deps.models.scan();
    const loaded = new Set(deps.workers.workers().map((worker) => worker.model));
    sendJson(res, 'listModels', 200, {
      default_model: deps.defaultModel,
      models: await Promise.all(
        models.map(async (model) => {
          const files = [model.files.encoder, model.files.decoder, model.files.tokens];
          return {
            name: model.name,
            default: model.name === deps.defaultModel,
            multilingual: model.multilingual,
            languages: [...model.languages],
            word_timestamps: model.wordTimestamps,
            size_bytes: model.sizeBytes,
            files: files.map((file) => path.basename(file)),
            checksums: await Promise.all(
              files.map(async (file) => {
                const { sizeBytes, sha256 } = await deps.checksums.lookup(file);
                return { file: path.basename(file), size_bytes: sizeBytes, sha256 };
              }),
            ),
            loaded: loaded.has(model.name),
          };
        }),
      ),
    });
  };
}
