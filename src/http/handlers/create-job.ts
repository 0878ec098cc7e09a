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
import type { IdempotencyLocals } from '../idempotency.ts';
import { submissionFingerprint } from '../idempotency.ts';
import { jobWebhookView } from '../delivery-view.ts';
import { parseWebhookEvents } from '../../webhooks/webhook-events.ts';

export function createJobHandler(deps: ApiDeps): OperationHandler<'createJob'> {
  return async (c, req, res) => {
    const locals = res.locals as UploadLocals & IdempotencyLocals;
    const upload = locals.upload;
    if (!upload) {
      throw new AppError('unsupported_content_type', 'Send the audio as multipart/form-data with a "file" field.');
    }
    const body = c.request.requestBody as Schemas['JobSubmission'];
    const fingerprint = submissionFingerprint(upload.sha256, req.body as Record<string, unknown>);
    const idempotency = locals.idempotency;
    if (idempotency?.claim.kind === 'done') {
      if (idempotency.claim.fingerprint !== fingerprint) {
        throw new AppError('idempotency_key_mismatch', 'This Idempotency-Key was used for a submission with another file or other fields.');
      }
      // The original answer, byte for byte; this request's upload is discarded when the answer is sent.
      res.setHeader('Location', `/jobs/${idempotency.claim.jobId}`);
      res.status(idempotency.claim.status).type('application/json').send(idempotency.claim.body);
      return;
    }
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
    const webhookUrl = body.webhook_url ?? deps.webhooks.defaultUrl;
    if (webhookUrl !== null) {
      await deps.webhooks.checkUrl(webhookUrl);
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
      },
      deps.clock.now(),
    );
    locals.uploadClaimed = true;
    const view = jobView(row);
    if (webhookUrl !== null) {
      const attached = await deps.webhooks.attach(row.id, webhookUrl, parseWebhookEvents(body.webhook_events));
      view.webhook = jobWebhookView(attached.webhook, attached.last);
    }
    if (idempotency?.claim.kind === 'owner') {
      await deps.idempotency.complete(idempotency.scope, idempotency.key, { fingerprint, jobId: row.id, status: 202, body: JSON.stringify(view) });
    }
    deps.logger.info('job accepted', { job_id: row.id, model: row.model, size_bytes: upload.sizeBytes });
    deps.dispatcher.notify();
    res.setHeader('Location', `/jobs/${row.id}`);
    sendJson(res, 'createJob', 202, view);
  };
}
