/**
 * @module http/handlers/create-job
 * `POST /jobs` (an upload, already on disk: see `http/upload.ts`) and `POST /jobs/from-url` (a URL for the worker
 * to download): check the URL, the model and the language, enqueue, answer 202 at once.
 */
import { randomUUID } from 'node:crypto';

import type { Request, Response } from 'express';

import { AppError } from '../../errors.ts';
import { jobView } from '../../jobs/job-view.ts';
import { uploadKey } from '../../storage/blob-store.ts';
import { checkModelRequest } from '../../transcription/model-request.ts';
import { parseWebhookEvents } from '../../webhooks/webhook-events.ts';
import { ownerOf } from '../api-keys.ts';
import type { ApiDeps } from '../deps.ts';
import { submissionFingerprint } from '../idempotency.ts';
import type { OperationHandler, Schemas } from '../operation-types.ts';
import { sendJson } from '../operation-types.ts';
import type { StoredUpload } from '../upload.ts';
import { sanitizeFileName } from '../upload.ts';

/** The last path segment of a URL as a display name, sanitized like an upload's. */
function urlFileName(url: URL | null): string | null {
  const last = url?.pathname.split('/').pop() ?? '';
  try {
    return sanitizeFileName(decodeURIComponent(last));
  } catch {
    return sanitizeFileName(last);
  }
}

type SubmissionOptions = Omit<Schemas['JobSubmission'], 'file'>;

/** What both submissions share once their media is known: check the options, enqueue, answer 202. */
async function acceptJob(
  deps: ApiDeps,
  req: Request,
  res: Response,
  body: SubmissionOptions,
  media: { upload: StoredUpload } | { url: string },
): Promise<void> {
  const { locals } = res;
  const upload = 'upload' in media ? media.upload : null;
  const idempotency = locals.idempotency;
  // The file's bytes stand for the file; a URL submission is all fields.
  const fingerprint = submissionFingerprint(upload?.sha256 ?? null, req.body as Record<string, unknown>);
  if (idempotency?.claim.kind === 'done') {
    if (idempotency.claim.fingerprint !== fingerprint) {
      throw new AppError('idempotency_key_mismatch', 'This Idempotency-Key was used for a submission with another file or other fields.');
    }
    // The original answer, byte for byte; this request's upload is discarded when the answer is sent.
    res.setHeader('Location', `/jobs/${idempotency.claim.jobId}`);
    res.status(idempotency.claim.status).type('application/json').send(idempotency.claim.body);
    return;
  }
  // Refused here when the URL alone decides it; where it resolves and redirects is checked by the worker.
  const sourceUrl = 'url' in media ? deps.urlPolicy.checkUrl(media.url) : null;
  const modelName = body.model ?? deps.defaultModel;
  const { models } = await deps.models.scan();
  const model = models.find((candidate) => candidate.name === modelName);
  const language = body.language ?? null;
  const task = body.task ?? 'transcribe';
  const granularity = body.timestamp_granularity ?? null;
  if (model) {
    const refused = checkModelRequest(model, { language, task });
    if (refused !== null) {
      throw new AppError(refused.code, refused.message, refused.code === 'unsupported_language' ? { supported_languages: [...model.languages] } : {});
    }
    if (granularity === 'word' && !model.wordTimestamps) {
      throw new AppError('word_timestamps_unsupported', `The model ${model.name} has no alignment heads, so it cannot time words; ask for segment timestamps or another model.`, {
        installed_models: models.filter((candidate) => candidate.wordTimestamps).map((candidate) => candidate.name),
      });
    }
  } else if (deps.role !== 'api') {
    throw new AppError('model_not_installed', `The model ${modelName} is not installed.`, {
      installed_models: models.map((installed) => installed.name),
    });
  }
  // An API node without the model accepts the name: the worker that claims the job checks the rest, failing it
  // with the same code this answer would have had.
  const webhookUrl = body.webhook_url ?? deps.webhooks.defaultUrl;
  if (webhookUrl !== null) {
    await deps.webhooks.checkUrl(webhookUrl);
  }
  const webhook = webhookUrl === null ? null : { url: webhookUrl, events: parseWebhookEvents(body.webhook_events) };
  const id = upload?.id ?? randomUUID();
  const row = await deps.store.enqueue(
    {
      id,
      model: modelName,
      language,
      task,
      fileName: upload ? upload.fileName : urlFileName(sourceUrl),
      inputPath: upload?.key ?? uploadKey(id),
      maxAttempts: deps.maxAttempts,
      sourceUrl: sourceUrl?.href ?? null,
      retentionSeconds: body.retention_seconds ?? deps.retentionSeconds,
      timestampGranularity: granularity,
      submittedBy: ownerOf(locals.caller),
      webhook,
    },
    deps.clock.now(),
  );
  locals.uploadClaimed = true;
  // Logged as soon as the job is stored: on PostgreSQL a worker (here or on another node) is woken by the commit
  // itself and may start it while this request still writes its idempotency record.
  deps.logger.info('job accepted', upload ? { job_id: row.id, model: row.model, size_bytes: upload.sizeBytes } : { job_id: row.id, model: row.model, source_host: sourceUrl?.host });
  const view = jobView(row, { queuePosition: await deps.store.queuePosition(row) }, deps.clock.now());
  if (webhook !== null) {
    view.webhook = { url: webhook.url, events: [...webhook.events], last_delivery: null };
  }
  if (idempotency?.claim.kind === 'owner') {
    await deps.idempotency.complete(
      idempotency.scope,
      idempotency.key,
      { fingerprint, jobId: row.id, status: 202, body: JSON.stringify(view) },
      deps.clock.now(),
      deps.idempotencyTtlSeconds * 1000,
    );
  }
  deps.dispatcher.notify();
  res.setHeader('Location', `/jobs/${row.id}`);
  sendJson(res, 'createJob', 202, view);
}

/** `POST /jobs`: the upload is on disk already (see `http/upload.ts`). */
export function createJobHandler(deps: ApiDeps): OperationHandler<'createJob'> {
  return async (c, req, res) => {
    const { upload } = res.locals;
    if (!upload) {
      throw new AppError('missing_file', 'Send a file in the field "file".');
    }
    await acceptJob(deps, req, res, c.request.requestBody as Schemas['JobSubmission'], { upload });
  };
}

/** `POST /jobs/from-url`: the worker downloads the URL. */
export function createJobFromUrlHandler(deps: ApiDeps): OperationHandler<'createJobFromUrl'> {
  return async (c, req, res) => {
    const body = c.request.requestBody as Schemas['JobUrlSubmission'];
    await acceptJob(deps, req, res, body, { url: body.url });
  };
}
