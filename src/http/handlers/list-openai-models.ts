/**
 * @module http/handlers/list-openai-models
 * `GET /v1/models` and `GET /v1/models/{model}`: the installed models and `whisper-1` in OpenAI's shape.
 */
import { stat } from 'node:fs/promises';

import { AppError } from '../../errors.ts';
import type { InstalledModel } from '../../transcription/models.ts';
import type { ApiDeps } from '../deps.ts';
import { OPENAI_DEFAULT_MODEL_ALIAS } from '../openai/audio-request.ts';
import type { OperationHandler, Schemas } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';

async function installedSeconds(model: InstalledModel): Promise<number> {
  return Math.floor((await stat(model.dir)).mtimeMs / 1000);
}

/** `whisper-1` first (when the default model is installed), then every installed model. */
async function openAIModels(deps: ApiDeps): Promise<Schemas['OpenAIModel'][]> {
  const { models } = await deps.models.scan();
  const listed: Schemas['OpenAIModel'][] = [];
  const defaultModel = models.find((model) => model.name === deps.defaultModel);
  if (defaultModel) {
    listed.push({ id: OPENAI_DEFAULT_MODEL_ALIAS, object: 'model', created: await installedSeconds(defaultModel), owned_by: 'cesar' });
  }
  for (const model of models) {
    listed.push({ id: model.name, object: 'model', created: await installedSeconds(model), owned_by: 'openai' });
  }
  return listed;
}

export function listOpenAIModelsHandler(deps: ApiDeps): OperationHandler<'listOpenAIModels'> {
  return async (_c, _req, res) => {
    sendJson(res, 'listOpenAIModels', 200, { object: 'list', data: await openAIModels(deps) });
  };
}

export function getOpenAIModelHandler(deps: ApiDeps): OperationHandler<'getOpenAIModel'> {
  return async (c, _req, res) => {
    const found = (await openAIModels(deps)).find((model) => model.id === c.request.params.model);
    if (!found) {
      throw new AppError('model_not_installed', `The model \`${c.request.params.model}\` does not exist or is not installed.`, { param: 'model' });
    }
    sendJson(res, 'getOpenAIModel', 200, found);
  };
}
