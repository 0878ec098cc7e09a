/**
 * @module http/handlers/list-models
 * `GET /models`: what is installed now (the directory is scanned on each call, so a model copied in later shows).
 */
import path from 'node:path';

import type { ApiDeps } from '../deps.ts';
import type { OperationHandler } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

export function listModelsHandler(deps: ApiDeps): OperationHandler<'listModels'> {
  return async (_c, _req, res) => {
    const { models } = await deps.models.scan();
    sendJson(res, 'listModels', 200, {
      default_model: deps.defaultModel,
      models: models.map((model) => ({
        name: model.name,
        default: model.name === deps.defaultModel,
        multilingual: model.multilingual,
        languages: [...model.languages],
        word_timestamps: model.wordTimestamps,
        size_bytes: model.sizeBytes,
        files: [model.files.encoder, model.files.decoder, model.files.tokens].map((file) => path.basename(file)),
      })),
    });
  };
}
