/**
 * @module http/app
 * The express application: the spec and its docs, the multipart upload step, and openapi-backend routing and
 * validating every request into the typed handlers. No `listen()` here: tests build the app in-process.
 */
import { readFileSync } from 'node:fs';

import ajvFormats from 'ajv-formats';
import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import { OpenAPIBackend } from 'openapi-backend';
import type { Context, Document } from 'openapi-backend';
import { parse, stringify } from 'yaml';

import { AppError } from '../errors.ts';
import type { ApiDeps } from './deps.ts';
import { queueBackpressure } from './backpressure.ts';
import { docsHandlers } from './docs.ts';
import { bodyIdleTimeout } from './body-timeout.ts';
import { createFormValidator } from './form-validator.ts';
import { cancelJobHandler } from './handlers/cancel-job.ts';
import { createJobFromUrlHandler, createJobHandler } from './handlers/create-job.ts';
import { createTranscriptionHandler } from './handlers/create-transcription.ts';
import { createTranslationHandler } from './handlers/create-translation.ts';
import { deleteJobHandler } from './handlers/delete-job.ts';
import { getHealthHandler } from './handlers/get-health.ts';
import { getLivenessHandler } from './handlers/get-liveness.ts';
import { getJobHandler } from './handlers/get-job.ts';
import { getJobResultHandler, transcriptHandler } from './handlers/get-job-result.ts';
import { getJobEventsHandler } from './handlers/get-job-events.ts';
import { listJobDeliveriesHandler } from './handlers/list-job-deliveries.ts';
import { redeliverJobWebhookHandler } from './handlers/redeliver-job-webhook.ts';
import { bearerToken, requireApiKey, unauthorizedError } from './auth.ts';
import { API_KEY_HEADER } from './api-keys.ts';
import { isOpenAIPath, sendOpenAIError } from './openai/openai-error.ts';
import { idempotencyGate, releaseIdempotencyKey } from './idempotency.ts';
import { listJobsHandler } from './handlers/list-jobs.ts';
import { listModelsHandler } from './handlers/list-models.ts';
import { getOpenAIModelHandler, listOpenAIModelsHandler } from './handlers/list-openai-models.ts';
import type { OperationHandler, OperationId } from './operation-types.ts';
import { routedMethod } from './operation-types.ts';
import { sendProblem } from './problem.ts';
import { METHODS, servedSpec } from './served-spec.ts';
import { discardUpload, multipartUpload } from './upload.ts';

export const SPEC_PATH = new URL('../../openapi.yaml', import.meta.url);

export function loadSpec(): Document {
  return parse(readFileSync(SPEC_PATH, 'utf8')) as Document;
}

function submissionFields(spec: Document, schemaName = 'JobSubmission'): ReadonlySet<string> {
  const schema = (spec.components?.schemas?.[schemaName] ?? {}) as { properties?: Record<string, unknown> };
  return new Set(Object.keys(schema.properties ?? {}));
}

/** Operations whose multipart forms the upload step validates (see `form-validator.ts`). */
const FORM_OPERATIONS = new Set(['createJob', 'createTranscription', 'createTranslation']);
/** The OpenAI-compatible forms: the schema of each path's fields. */
const OPENAI_FORMS = {
  '/v1/audio/transcriptions': 'OpenAITranscriptionRequest',
  '/v1/audio/translations': 'OpenAITranslationRequest',
} as const;

/**
 * openapi-backend checks the document against the OpenAPI 3.0 schema only, which rejects valid 3.1 (`type`
 * arrays, `license.identifier`). The spec is checked as 3.1 by openapi-typescript's generation instead.
 */
class OpenApi31Backend extends OpenAPIBackend {
  override validateDefinition(): Document {
    return this.document;
  }
}

function isMultipart(contentType: string | string[] | undefined): boolean {
  return String(contentType ?? '').toLowerCase().startsWith('multipart/');
}

/** body-parser's errors (malformed, oversized or undecodable JSON) as registered codes. */
function bodyParserError(error: unknown, req: Request): unknown {
  const { type, status, message } = (error ?? {}) as { type?: unknown; status?: unknown; message?: unknown };
  const contentEncoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (typeof type !== 'string') {
    // body-parser marks its read errors 400 and gives its own a type: one without is the decompressor's
    // (not gzip, truncated, bad deflate or br), the client's doing.
    if (status === 400 && contentEncoding !== 'identity') {
      return new AppError('invalid_request', `The body does not decompress as its Content-Encoding ${JSON.stringify(contentEncoding)} says (${String(message)}).`);
    }
    // Not the JSON parser's (a failing backpressure count, say): an internal error, logged as such.
    return error;
  }
  if (type === 'entity.too.large') {
    return new AppError('upload_too_large', 'The JSON body is larger than the limit.');
  }
  if (type === 'encoding.unsupported') {
    return new AppError('unsupported_content_type', `The Content-Encoding ${JSON.stringify(contentEncoding)} is not supported; send the body uncompressed, or as gzip, deflate or br.`);
  }
  if (type === 'charset.unsupported') {
    return new AppError('unsupported_content_type', 'The JSON body must be UTF-8.');
  }
  return new AppError('invalid_request', 'The JSON body is malformed.');
}

export async function createApp(deps: ApiDeps): Promise<Express> {
  const spec = servedSpec(loadSpec(), { apiKeys: deps.apiKeys.enabled });
  // The file as written (comments kept) when nothing was taken out of it.
  const specYaml = deps.apiKeys.enabled ? readFileSync(SPEC_PATH, 'utf8') : stringify(spec);
  const api = new OpenApi31Backend({
    definition: structuredClone(spec),
    strict: true,
    // Forms are validated by the upload step (see `form-validator.ts`); everything else here.
    validate: (c: Context) => !(FORM_OPERATIONS.has(c.operation.operationId ?? '') && isMultipart((c.request.headers as Record<string, string | string[] | undefined>)['content-type'])),
    coerceTypes: true,
    // ajv-formats is CommonJS: its plugin is the `default` member under ESM interop.
    customizeAjv: (ajv) => ajvFormats.default(ajv),
  });

  const handlers: { [O in OperationId]: OperationHandler<O> } = {
    createJob: createJobHandler(deps),
    createJobFromUrl: createJobFromUrlHandler(deps),
    listJobs: listJobsHandler(deps),
    getJob: getJobHandler(deps),
    deleteJob: deleteJobHandler(deps),
    cancelJob: cancelJobHandler(deps),
    getJobResult: getJobResultHandler(deps),
    getTranscript: transcriptHandler(deps, 'getTranscript'),
    getVerboseTranscript: transcriptHandler(deps, 'getVerboseTranscript'),
    getTranscriptText: transcriptHandler(deps, 'getTranscriptText'),
    getTranscriptSrt: transcriptHandler(deps, 'getTranscriptSrt'),
    getTranscriptVtt: transcriptHandler(deps, 'getTranscriptVtt'),
    getHealth: getHealthHandler(deps),
    getLiveness: getLivenessHandler(deps),
    listModels: listModelsHandler(deps),
    getJobEvents: getJobEventsHandler(deps),
    listJobDeliveries: listJobDeliveriesHandler(deps),
    redeliverJobWebhook: redeliverJobWebhookHandler(deps),
    createTranscription: createTranscriptionHandler(deps),
    createTranslation: createTranslationHandler(deps),
    listOpenAIModels: listOpenAIModelsHandler(deps),
    getOpenAIModel: getOpenAIModelHandler(deps),
  };
  /** Errors in OpenAI's shape on `/v1/*`, problem+json everywhere else. */
  // RFC 9110 section 15.5.6: a 405 lists the methods the resource supports. A literal path (`/jobs/from-url`) is
  // its own resource, although a template (`/jobs/{id}`) matches it too.
  const allowedMethods = (path: string): string[] => {
    const literal = api.definition.paths?.[path] !== undefined;
    return METHODS.map((method) => method.toUpperCase()).filter((method) => {
      const operation = api.matchOperation({ method, path, headers: {} });
      return operation !== undefined && (!literal || operation.path === path);
    });
  };
  const answerMethodNotAllowed = (req: Request, res: Response): void => {
    res.setHeader('Allow', allowedMethods(req.path).join(', '));
    if (isOpenAIPath(req.path)) {
      res.status(405).json({ error: { message: `${req.method} is not allowed on ${req.path}.`, type: 'invalid_request_error', param: null, code: null } });
      return;
    }
    res.status(405).type('application/problem+json').send(
      JSON.stringify({ type: 'about:blank', title: 'Method Not Allowed', status: 405, detail: `${req.method} is not allowed on ${req.path}.` }),
    );
  };
  const sendError = (res: Response, error: unknown, instance: string): void => {
    if (isOpenAIPath(instance)) {
      sendOpenAIError(res, error, deps.logger, instance);
    } else {
      sendProblem(res, error, deps.logger, instance);
    }
  };
  const answerProblem = async (req: Request, res: Response, error: unknown): Promise<void> => {
    try {
      await discardUpload(res);
      await releaseIdempotencyKey(res, deps.idempotency);
    } catch (cleanupError) {
      deps.logger.error('cleaning up a refused request failed', { error: cleanupError });
    }
    sendError(res, error, req.originalUrl);
  };
  for (const [operationId, handler] of Object.entries(handlers)) {
    api.register(operationId, (c: Context, req: Request, res: Response) =>
      (handler as (c: Context, req: Request, res: Response) => Promise<void>)(c, req, res).catch((error: unknown) =>
        answerProblem(req, res, error),
      ),
    );
  }
  // The express middleware below already refused requests without a valid key; this keeps openapi-backend's
  // own check (strict mode fails closed) in agreement with it. Without keys the served spec has no scheme.
  if (deps.apiKeys.enabled) {
    api.registerSecurityHandler('ApiKey', (c: Context) => deps.apiKeys.verify((c.request.headers as Record<string, string | string[] | undefined>)[API_KEY_HEADER]) !== null);
    api.registerSecurityHandler('BearerAuth', (c: Context) => {
      const authorization = (c.request.headers as Record<string, string | string[] | undefined>).authorization;
      return deps.apiKeys.verify(bearerToken(typeof authorization === 'string' ? authorization : undefined)) !== null;
    });
  }
  api.register({
    unauthorizedHandler: (_c: Context, req: Request, res: Response) => answerProblem(req, res, unauthorizedError(req.path)),
    validationFail: (c: Context, req: Request, res: Response) => {
      const errors = (c.validation.errors ?? []).map((error) => ({
        location: error.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'request',
        message: error.message ?? 'is invalid',
      }));
      return answerProblem(req, res, new AppError('invalid_request', errors.map((e) => `${e.location} ${e.message}`).join('; '), { errors }));
    },
    notFound: (_c: Context, req: Request, res: Response) => {
      if (isOpenAIPath(req.path)) {
        res.status(404).json({ error: { message: `Invalid URL (${req.method} ${req.path})`, type: 'invalid_request_error', param: null, code: null } });
        return;
      }
      res.status(404).type('application/problem+json').send(
        JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail: `No route for ${req.method} ${req.path}.` }),
      );
    },
    methodNotAllowed: (_c: Context, req: Request, res: Response) => {
      answerMethodNotAllowed(req, res);
    },
  });
  await api.init();
  const submissionSchema = api.definition.components?.schemas?.JobSubmission ?? {};
  const validateForm = createFormValidator(submissionSchema);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  if (deps.role === 'worker') {
    // A worker node takes no submissions and serves no jobs (its clients are the API nodes' load balancer's
    // health checks): only the health endpoints answer on its port.
    app.use((req, res, next) => {
      if (req.path === '/health' || req.path === '/health/live') {
        next();
        return;
      }
      res.status(404).type('application/problem+json').send(
        JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail: `This is a worker node: it serves only GET /health and GET /health/live, not ${req.method} ${req.path}.` }),
      );
    });
  }
  app.use(bodyIdleTimeout({ idleMs: deps.uploadIdleTimeoutMs, onTimeout: (res, error) => sendError(res, error, res.req.originalUrl) }));
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(specYaml);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(spec);
  });
  app.use('/docs', ...docsHandlers(spec));
  // Everything after this needs a key when keys are configured; the spec and its docs above do not.
  app.use(requireApiKey({ verifier: deps.apiKeys, api, onError: (res, error) => sendError(res, error, res.req.originalUrl) }));
  const upload = multipartUpload({
    blobs: deps.blobs,
    maxBytes: deps.maxUploadBytes,
    maxConcurrent: deps.maxConcurrentUploads,
    allowedFields: submissionFields(spec),
    validateFields: validateForm,
    onError: (res, error) => sendProblem(res, error, deps.logger, '/jobs'),
  });
  // The key is claimed before the body is read: a duplicate still uploading is refused at once.
  const submissionGate = [
    idempotencyGate({
      store: deps.idempotency,
      clock: deps.clock,
      onError: (res, error) => sendProblem(res, error, deps.logger, res.req.originalUrl),
    }),
    queueBackpressure(deps),
  ];
  app.post('/jobs', ...submissionGate, upload);
  // Parsed here, validated by openapi-backend; a body that is not JSON is refused before the handler runs.
  app.post('/jobs/from-url', ...submissionGate, express.json({ limit: '16kb' }), (req, res, next) => {
    if (req.is('application/json')) {
      next();
    } else {
      sendProblem(res, new AppError('unsupported_content_type', 'Send the submission as application/json with a "url" field.'), deps.logger, req.originalUrl);
    }
  });
  for (const [route, schemaName] of Object.entries(OPENAI_FORMS)) {
    app.post(
      route,
      queueBackpressure({ ...deps, sendError: (res, error) => sendError(res, error, route) }),
      multipartUpload({
        blobs: deps.blobs,
        maxBytes: deps.maxUploadBytes,
        maxConcurrent: deps.maxConcurrentUploads,
        allowedFields: submissionFields(spec, schemaName),
        arrayFields: new Set(['timestamp_granularities']),
        fieldAliases: { 'timestamp_granularities[]': 'timestamp_granularities' },
        validateFields: createFormValidator(api.definition.components?.schemas?.[schemaName] ?? {}),
        onError: (res, error) => sendError(res, error, route),
      }),
    );
  }
  app.use('/v1', (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    sendError(res, error, req.originalUrl);
  });
  app.use('/jobs', (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    sendProblem(res, bodyParserError(error, req), deps.logger, '/jobs');
  });
  app.use((req, res, next) => {
    // ajv's coercion reads any number literal (`+0.0`, `1e1`) as an integer; the spec's integers are digits.
    const operation = api.matchOperation({ method: req.method, path: req.path, headers: {} });
    for (const parameter of (operation?.parameters ?? []) as { in?: string; name?: string; schema?: { type?: unknown } }[]) {
      const value = parameter.in === 'query' && parameter.name !== undefined ? (req.query as Record<string, unknown>)[parameter.name] : undefined;
      if (typeof value === 'string' && parameter.schema?.type === 'integer' && !/^-?[0-9]+$/.test(value)) {
        const location = `query.${parameter.name ?? ''}`;
        sendProblem(res, new AppError('invalid_request', `${location} must be an integer`, { errors: [{ location, message: 'must be an integer' }] }), deps.logger, req.originalUrl);
        return;
      }
    }
    next();
  });
  app.use((req, res) => {
    // openapi-backend would route `GET /jobs/from-url` to `/jobs/{id}`; a literal path answers for itself.
    const method = routedMethod(req.method);
    if (api.definition.paths?.[req.path] !== undefined && !allowedMethods(req.path).includes(method.toUpperCase())) {
      answerMethodNotAllowed(req, res);
      return;
    }
    void api
      .handleRequest({ method, path: req.path, query: req.query as Record<string, string>, headers: req.headers as Record<string, string>, body: req.body as unknown }, req, res)
      .catch((error: unknown) => answerProblem(req, res, error));
  });
  return app;
}
