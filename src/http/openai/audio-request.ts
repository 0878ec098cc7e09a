/**
 * @module http/openai/audio-request
 * `POST /v1/audio/transcriptions` and `/v1/audio/translations`: the upload becomes an interactive job in the
 * durable queue (claimed ahead of batch jobs), and the request waits for it. The job, not the connection, owns
 * the work: a client that goes away, a wait that runs out (202 with the job's Location) or `Prefer:
 * respond-async` leave the job to complete and stay fetchable under `/jobs/{id}`.
 */
import path from 'node:path';

import type { Request, Response } from 'express';

import { AppError } from '../../errors.ts';
import { INTERACTIVE_PRIORITY } from '../../jobs/job-store.ts';
import type { JobRow } from '../../jobs/job-store.ts';
import type { InstalledModel } from '../../transcription/models.ts';
import { transcriptText } from '../../transcripts/render-transcript.ts';
import { ownerOf } from '../api-keys.ts';
import type { ApiDeps } from '../deps.ts';
import { jobView } from '../../jobs/job-view.ts';
import type { Schemas } from '../operation-types.ts';
import { durationUsage, renderOpenAI } from './openai-format.ts';
import type { OpenAIGranularity, OpenAIResponseFormat } from './openai-format.ts';
import { openAIError } from './openai-error.ts';

/** The model name OpenAI's clients send by default; it stands for the server's default model. */
export const OPENAI_DEFAULT_MODEL_ALIAS = 'whisper-1';
/** The wait grows with the audio once its duration is known: decoding plus the queue ahead of it. */
export const WAIT_PER_AUDIO_SECOND = 2.5;
const TERMINAL = new Set(['completed', 'failed', 'canceled']);
const POLL_MS = 1000;
const KEEPALIVE_MS = 15_000;

type AudioForm = Partial<Schemas['OpenAITranscriptionRequest']>;

/** The installed model a request names (`whisper-1`: the default one), or OpenAI's 404. */
export async function resolveModel(deps: Pick<ApiDeps, 'models' | 'defaultModel'>, name: string): Promise<InstalledModel> {
  const wanted = name === OPENAI_DEFAULT_MODEL_ALIAS ? deps.defaultModel : name;
  const { models } = await deps.models.scan();
  const model = models.find((candidate) => candidate.name === wanted);
  if (!model) {
    throw new AppError('model_not_installed', `The model \`${name}\` does not exist or is not installed.`, { param: 'model' });
  }
  return model;
}

function wantsAsync(req: Request): boolean {
  return String(req.headers.prefer ?? '').split(',').some((preference) => preference.trim().toLowerCase().split(/[;= ]/)[0] === 'respond-async');
}

/** Waits for the job to end; null when `waitMs(job)` passed first or the client went away. */
async function waitForEnd(deps: ApiDeps, jobId: string, waitMs: (job: JobRow) => number, signal: AbortSignal): Promise<JobRow | null> {
  const startedMs = deps.clock.now();
  const watch = deps.jobEvents.watch(jobId, signal);
  try {
    for (;;) {
      const job = await deps.store.get(jobId);
      if (!job || TERMINAL.has(job.status)) {
        return job ?? null;
      }
      const leftMs = startedMs + waitMs(job) - deps.clock.now();
      if (leftMs <= 0 || signal.aborted) {
        return null;
      }
      await watch.next(Math.min(POLL_MS, leftMs));
    }
  } finally {
    watch.close();
  }
}

/** A job that did not complete, as the OpenAI error its client would have got from a synchronous call. */
function jobFailure(job: JobRow): AppError {
  const code = job.error_code ?? 'internal_error';
  return new AppError(code === 'canceled' ? 'canceled' : code, job.error_message ?? 'The job did not complete.');
}

async function sendAccepted(deps: ApiDeps, res: Response, job: JobRow, applied: boolean): Promise<void> {
  res.setHeader('Location', `/jobs/${job.id}`);
  if (applied) {
    res.setHeader('Preference-Applied', 'respond-async');
  }
  res.status(202).json(jobView(job, { queuePosition: await deps.store.queuePosition(job) }, deps.clock.now()));
}

/**
 * `stream=true`: one `transcript.text.delta` per segment as the job's event log records it (the log behind
 * `GET /jobs/{id}/events`), then `transcript.text.done` with the stored transcript's text.
 */
async function streamTranscript(deps: ApiDeps, res: Response, jobId: string, signal: AbortSignal): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  const send = (data: object): void => void res.write(`data: ${JSON.stringify(data)}\n\n`);
  let lastSeq = 0;
  // An attempt retried after a crash sends its segments again from id 0: each is passed on once.
  let nextSegmentId = 0;
  let sentText = false;
  let quietMs = 0;
  const watch = deps.jobEvents.watch(jobId, signal);
  try {
    while (!signal.aborted) {
      const job = await deps.store.get(jobId);
      if (!job) {
        send(openAIError(new AppError('job_not_found', 'The job was deleted.')).body);
        return;
      }
      await deps.jobEvents.syncStatus(jobId);
      for (const event of await deps.jobEvents.after(jobId, lastSeq)) {
        lastSeq = event.seq;
        if (event.type !== 'segment') {
          continue;
        }
        const segment = JSON.parse(event.data) as { id: number; text: string };
        const text = segment.text.trim();
        if (segment.id !== nextSegmentId) {
          continue;
        }
        nextSegmentId++;
        if (text.length > 0) {
          send({ type: 'transcript.text.delta', delta: sentText ? ` ${text}` : text });
          sentText = true;
          quietMs = 0;
        }
      }
      if (TERMINAL.has(job.status)) {
        const transcript = job.status === 'completed' ? await deps.store.transcript(jobId) : undefined;
        if (transcript) {
          send({ type: 'transcript.text.done', text: transcriptText(transcript), usage: durationUsage(transcript) });
        } else {
          send(openAIError(jobFailure(job)).body);
        }
        return;
      }
      if (await watch.next(POLL_MS)) {
        quietMs += POLL_MS;
      }
      if (quietMs >= KEEPALIVE_MS) {
        quietMs = 0;
        res.write(': keep-alive\n\n');
      }
    }
  } finally {
    watch.close();
    res.end();
  }
}

/** Checks the form against the model, enqueues the job and answers as OpenAI would (or 202). */
export async function handleAudioRequest(deps: ApiDeps, task: 'transcribe' | 'translate', req: Request, res: Response): Promise<void> {
  const locals = res.locals;
  const upload = locals.upload;
  if (!upload) {
    throw new AppError('missing_file', 'Send the audio in the field "file".');
  }
  const form = req.body as AudioForm;
  const model = await resolveModel(deps, form.model ?? OPENAI_DEFAULT_MODEL_ALIAS);
  const format: OpenAIResponseFormat = form.response_format ?? 'json';
  const granularities: OpenAIGranularity[] = [...new Set(form.timestamp_granularities ?? [])];
  const stream = form.stream === true;
  if (granularities.includes('word') && format !== 'verbose_json') {
    throw new AppError('invalid_request', 'timestamp_granularities=word needs response_format=verbose_json.', { param: 'timestamp_granularities' });
  }
  if (stream && format !== 'json' && format !== 'text') {
    throw new AppError('invalid_request', `stream=true gives text events; it works with response_format json or text, not ${format}.`, { param: 'stream' });
  }
  const language = form.language ?? null;
  if (language !== null && !model.languages.includes(language)) {
    throw new AppError('unsupported_language', `The model ${model.name} does not support the language ${language}.`, { param: 'language' });
  }
  if (task === 'translate' && !model.multilingual) {
    throw new AppError('unsupported_task', `The model ${model.name} is English-only and cannot translate; name a multilingual model.`, { param: 'model' });
  }
  if (granularities.includes('word') && !model.wordTimestamps) {
    throw new AppError('word_timestamps_unsupported', `The model ${model.name} cannot time words.`, { param: 'timestamp_granularities' });
  }
  const unused = [form.prompt !== undefined ? 'prompt' : null, form.temperature !== undefined ? 'temperature' : null].filter((name) => name !== null);
  const job = await deps.store.enqueue(
    {
      id: upload.id,
      model: model.name,
      language,
      task,
      fileName: upload.fileName,
      inputPath: path.relative(deps.dataDir, upload.path),
      maxAttempts: deps.maxAttempts,
      retentionSeconds: deps.retentionSeconds,
      // Words are kept whenever the model has them (subtitles are timed by them), unless only segments were asked.
      timestampGranularity: granularities.includes('word') ? 'word' : null,
      priority: INTERACTIVE_PRIORITY,
      submittedBy: ownerOf(locals.caller),
    },
    deps.clock.now(),
  );
  locals.uploadClaimed = true;
  deps.logger.info('job accepted', { job_id: job.id, model: job.model, size_bytes: upload.sizeBytes, interface: 'openai', task });
  deps.dispatcher.notify();
  res.setHeader('Cesar-Job-Id', job.id);
  if (unused.length > 0) {
    res.setHeader('Cesar-Unused-Parameters', unused.join(', '));
  }
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  if (wantsAsync(req)) {
    await sendAccepted(deps, res, job, true);
    return;
  }
  if (stream) {
    await streamTranscript(deps, res, job.id, gone.signal);
    return;
  }
  const baseWaitMs = deps.openAIWaitSeconds * 1000;
  const ended = await waitForEnd(deps, job.id, (current) => Math.max(baseWaitMs, WAIT_PER_AUDIO_SECOND * 1000 * (current.duration_seconds ?? 0)), gone.signal);
  if (gone.signal.aborted) {
    // The client went away; the job completes without it.
    return;
  }
  if (ended === null) {
    const current = await deps.store.get(job.id);
    if (current) {
      await sendAccepted(deps, res, current, false);
      return;
    }
    throw new AppError('job_not_found', 'The job was deleted while the request waited.');
  }
  if (ended.status !== 'completed') {
    throw jobFailure(ended);
  }
  const transcript = await deps.store.transcript(ended.id);
  if (!transcript) {
    throw new AppError('internal_error', 'The transcript of this completed job is missing.');
  }
  const rendered = renderOpenAI(transcript, format, { jobId: ended.id, model: ended.model, task: ended.task, granularities });
  res.status(200).type(rendered.contentType).send(rendered.body);
}
