/**
 * @module http/handlers/create-job
 * `POST /jobs`: the upload is already on disk (see `http/upload.ts`); check the model and language against
 * what is installed, enqueue, answer 202 at once.
 */
import path from 'node:path';

import { AppError } from '../../errors.ts';
import type { ApiDeps } from '../deps.ts';
import { jobView } from '../job-view.ts';
import type { OperationHandler, Schemas } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';
import type { UploadLocals } from '../upload.ts';

export function createJobHandler(deps: ApiDeps): OperationHandler<'createJob'> {
  return async (c, _req, res) => {
    const locals = res.locals as UploadLocals;
    const upload = locals.upload;
    if (!upload) {
      throw new AppError('unsupported_content_type', 'Send the audio as multipart/form-data with a "file" field.');
    }
    const body = c.request.requestBody as Schemas['JobSubmission'];
    const modelName = body.model ?? deps.defaultModel;
    const { models } = await deps.models.scan();
    const model = models.find((candidate) => candidate.name === modelName);
    if (!model) {
      throw new AppError('model_not_installed', `The model ${modelName} is not installed.`, {
        installed_models: models.map((installed) => installed.name),
      });
    }
    const language = body.language ?? null;
    if (language !== null && !model.languages.includes(language)) {
      throw new AppError('unsupported_language', `The model ${model.name} does not support the language ${language}.`, {
        supported_languages: [...model.languages],
      });
    }
    const task = body.task ?? 'transcribe';
    if (task === 'translate' && !model.multilingual) {
      throw new AppError('unsupported_task', `The model ${model.name} is English-only and cannot translate.`);
    }
    const granularity = body.timestamp_granularity ?? null;
    if (granularity === 'word' && !model.wordTimestamps) {
      throw new AppError('word_timestamps_unsupported', `The model ${model.name} has no alignment heads, so it cannot time words; ask for segment timestamps or another model.`, {
        installed_models: models.filter((candidate) => candidate.wordTimestamps).map((candidate) => candidate.name),
      });
    }
    const row = await deps.store.enqueue(
      {
        id: upload.id,
        model: model.name,
        language,
        task,
        fileName: upload.fileName,
        inputPath: path.relative(deps.dataDir, upload.path),
        maxAttempts: deps.maxAttempts,
        timestampGranularity: granularity,
      },
      deps.clock.now(),
    );
    locals.uploadClaimed = true;
    deps.logger.info('job accepted', { job_id: row.id, model: row.model, size_bytes: upload.sizeBytes });
    deps.dispatcher.notify();
    res.setHeader('Location', `/jobs/${row.id}`);
    sendJson(res, 'createJob', 202, jobView(row, { queuePosition: await deps.store.queuePosition(row) }, deps.clock.now()));
  };
}
