/**
 * @module contract-tests/support/contract
 * An HTTP client for the tests that checks every answer against `openapi.yaml`: the status must be declared for
 * the operation, the content type must be one the spec lists for it, required headers must be present and the
 * body must match the schema. Every checked (operation, status) pair is recorded; when the whole suite has run,
 * an operation or a declared status that no test exercised fails the run.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';

import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { OpenAPIBackend } from 'openapi-backend';
import type { Document, Operation } from 'openapi-backend';

import { loadSpec } from '../../src/http/app.ts';

type ResponseObject = {
  content?: Record<string, { schema?: object }>;
  headers?: Record<string, { required?: boolean }>;
};

/** One event's envelope schema: its `data` a JSON document described by `contentSchema`. */
type StreamEventSchema = { properties?: { data?: { contentMediaType?: string; contentSchema?: object } } };

class Spec31Backend extends OpenAPIBackend {
  // The 3.0-only document check of openapi-backend; the spec is 3.1 (see src/http/app.ts).
  override validateDefinition(): Document {
    return this.document;
  }
}

const backend = new Spec31Backend({ definition: loadSpec(), validate: false, strict: true });
await backend.init();
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajvFormats.default(ajv);
const validators = new Map<object, ValidateFunction>();

/** Every (operationId, status) the spec declares. */
export const declared = new Set<string>();
/** Every (operationId, status) a test received and checked. */
export const exercised = new Set<string>();
for (const operation of backend.getOperations()) {
  for (const status of Object.keys(operation.responses ?? {})) {
    declared.add(`${operation.operationId} ${status}`);
  }
}

function validatorFor(schema: object): ValidateFunction {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

export interface ServerSentEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Parses a `text/event-stream` body (the subset the server writes: id, event, data lines; comments skipped). */
export function parseEventStream(text: string): ServerSentEvent[] {
  const events: ServerSentEvent[] = [];
  for (const block of text.split('\n\n')) {
    let id: string | null = null;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (line === '' || colon === 0) {
        continue;
      }
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') {
        id = value;
      } else if (field === 'event') {
        event = value;
      } else if (field === 'data') {
        data.push(value);
      }
    }
    if (data.length > 0) {
      events.push({ id, event, data: data.join('\n') });
    }
  }
  return events;
}

export interface CheckedResponse {
  status: number;
  headers: Headers;
  contentType: string;
  text: string;
  /** The parsed body for JSON and problem+json answers. */
  json: unknown;
  operationId: string;
}

/** Checks one answer against the operation the request matched in the spec, and records it. */
export function checkAgainstSpec(method: string, url: URL, response: { status: number; headers: Headers; text: string }): CheckedResponse {
  const operation: Operation | undefined = backend.matchOperation({ method, path: url.pathname, headers: {} });
  assert.ok(operation?.operationId, `${method} ${url.pathname} is not an operation of the spec`);
  const operationId = operation.operationId;
  const declaredResponse = operation.responses?.[String(response.status)] as ResponseObject | undefined;
  assert.ok(declaredResponse, `${operationId} answered ${response.status}, which the spec does not declare: ${response.text.slice(0, 300)}`);
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
  let json: unknown = undefined;
  if (declaredResponse.content === undefined) {
    assert.equal(response.text, '', `${operationId} ${response.status} must have no body`);
  } else {
    const media = declaredResponse.content[contentType];
    assert.ok(media, `${operationId} ${response.status} answered ${contentType || 'no content type'}; the spec lists ${Object.keys(declaredResponse.content).join(', ')}`);
    if (contentType === 'text/event-stream') {
      // The schema describes each event (OpenAPI 3.1 has no `itemSchema`): its envelope, then its JSON data.
      assert.ok(media.schema, `${operationId} documents no event schema`);
      const branches = ((media.schema as { oneOf?: StreamEventSchema[] }).oneOf ?? [media.schema]) as StreamEventSchema[];
      for (const event of parseEventStream(response.text)) {
        const envelope = { event: event.event, data: event.data, ...(event.id === null ? {} : { id: event.id }) };
        const matching = branches.filter((branch) => validatorFor(branch)(envelope));
        assert.equal(matching.length, 1, `${operationId} event ${JSON.stringify(envelope)} matches ${matching.length} of the spec's events`);
        const data = matching[0]?.properties?.data;
        if (data?.contentMediaType === 'application/json' && data.contentSchema) {
          const validate = validatorFor(data.contentSchema);
          assert.ok(validate(JSON.parse(event.data)), `${operationId} event ${event.event} does not match the spec: ${ajv.errorsText(validate.errors)}\n${event.data}`);
        }
      }
    } else {
      const body = contentType.endsWith('json') ? (json = JSON.parse(response.text) as unknown) : response.text;
      if (media.schema) {
        const validate = validatorFor(media.schema);
        assert.ok(validate(body), `${operationId} ${response.status} body does not match the spec: ${ajv.errorsText(validate.errors)}\n${response.text.slice(0, 500)}`);
      }
    }
  }
  for (const [name, header] of Object.entries(declaredResponse.headers ?? {})) {
    if (header.required) {
      assert.ok(response.headers.has(name), `${operationId} ${response.status} lacks the required header ${name}`);
    }
  }
  exercised.add(`${operationId} ${response.status}`);
  return { status: response.status, headers: response.headers, contentType, text: response.text, json, operationId };
}

export interface RequestOptions {
  body?: NonNullable<RequestInit['body']>;
  headers?: Record<string, string>;
}

/** A fetch-based client whose every answer is checked against the spec. */
export function contractClient(baseUrl: string) {
  const request = async (method: string, path: string, options: RequestOptions = {}): Promise<CheckedResponse> => {
    const url = new URL(path, baseUrl);
    const init: RequestInit = { method };
    if (options.body !== undefined) {
      init.body = options.body;
      if (options.body instanceof ReadableStream) {
        // fetch needs this to send a streamed request body.
        (init as RequestInit & { duplex: 'half' }).duplex = 'half';
      }
    }
    if (options.headers !== undefined) {
      init.headers = options.headers;
    }
    const response = await fetch(url, init);
    const text = await response.text();
    return checkAgainstSpec(method, url, { status: response.status, headers: response.headers, text });
  };
  return {
    baseUrl,
    request,
    get: (path: string, options?: RequestOptions) => request('GET', path, options),
    post: (path: string, options?: RequestOptions) => request('POST', path, options),
    delete: (path: string, options?: RequestOptions) => request('DELETE', path, options),
  };
}

export type ContractClient = ReturnType<typeof contractClient>;

const skipped: string[] = [];

/** Records a test skipped for want of a model, so that the end of the run says so loudly. */
export function noteSkipped(name: string): void {
  skipped.push(name);
}

/** Fails the run from a root hook: a throw there is reported but does not change the exit code. */
function failRun(message: string): void {
  process.stderr.write(`\n✖ ${message}\n`);
  process.exitCode = 1;
}

// With `--test-isolation=none` every test file shares this module, so this runs once, after all of them.
// Running a subset of the files? Set CESAR_CONTRACT_COVERAGE=0 to leave the coverage check out.
after(() => {
  if (skipped.length > 0) {
    process.stderr.write(
      `\n!!! ${skipped.length} test(s) SKIPPED because a Whisper model was missing (set CESAR_MODELS_DIR, or let npm test fetch tiny.en into ./models):\n${skipped.map((name) => `!!!   ${name}`).join('\n')}\n`,
    );
    if (process.env.CI) {
      failRun('CI must run the real-model tests: point CESAR_MODELS_DIR at the models.');
    }
    return;
  }
  if (process.env.CESAR_CONTRACT_COVERAGE === '0') {
    return;
  }
  const missing = [...declared].filter((entry) => !exercised.has(entry)).sort();
  if (missing.length > 0) {
    failRun(`contract coverage: declared responses that no test exercised:\n${missing.map((entry) => `  ${entry}`).join('\n')}`);
  } else {
    process.stderr.write(`\ncontract coverage: all ${declared.size} declared responses of ${backend.getOperations().length} operations exercised\n`);
  }
});
