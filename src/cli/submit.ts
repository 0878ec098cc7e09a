/**
 * @module cli/submit
 * `cesar submit FILE|URL --server URL [--wait]`: sends audio to a running Cesar through a client generated from
 * openapi.yaml (openapi-fetch typed by generated/openapi.d.ts), then, with --wait, follows the job to its end and
 * writes the transcript.
 */
import { openAsBlob } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

import createClient from 'openapi-fetch';

import type { components, paths } from '../../generated/openapi.d.ts';
import { intOption, parseCommandArgs, stringOption } from './args.ts';
import type { OptionSpec } from './args.ts';
import { CliError, EXIT, UsageError } from './exit-codes.ts';
import { followJobEvents } from './job-events.ts';
import { createProgressBar } from './progress.ts';
import { parseFormats } from './transcribe.ts';

type Job = components['schemas']['Job'];
type Problem = { title?: string; detail?: string; code?: string };

export const SUBMIT_USAGE = `Usage: cesar submit FILE|URL --server URL [options]

Sends a file, or a URL that the server downloads (under its URL policy), to a running Cesar server and
prints the job. With --wait, follows the job's progress until it ends and writes its transcript.

Options:
  --server URL          the server (default: http://127.0.0.1:8000)
  --model NAME          model to use (default: the server's default model)
  --language CODE       spoken language (en, de, ...)
  --task TASK           transcribe or translate
  --wait                wait for the transcript
  --format LIST         with --wait: txt, json, verbose_json, srt, vtt, or several separated by commas (default: txt)
  --output DIR          with --wait: write FILE's base name with each format's extension into DIR;
                        - (the default) writes to standard output
  --poll-ms N           how often to poll the job when the server sends no live events (default: 500)
  -h, --help            show this help

Exit codes: 0 submitted (with --wait: completed); 1 the server refused the file or the job failed;
2 bad arguments; 3 the server cannot be reached; 130 interrupted.
`;

const OPTIONS: OptionSpec = {
  server: { type: 'string' },
  model: { type: 'string' },
  language: { type: 'string' },
  task: { type: 'string' },
  wait: { type: 'boolean' },
  format: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'poll-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const TERMINAL: ReadonlySet<Job['status']> = new Set(['completed', 'failed', 'canceled']);

function problemMessage(status: number, problem: unknown): string {
  const { title, detail, code } = (typeof problem === 'object' && problem !== null ? problem : {}) as Problem;
  return `the server answered ${status}${code ? ` ${code}` : ''}: ${detail ?? title ?? 'no detail'}`;
}

/** The audio as a Blob, read lazily from disk. */
async function loadAudio(source: string): Promise<{ blob: Blob; fileName: string }> {
  try {
    if (!(await stat(source)).isFile()) {
      throw new CliError(`cannot read ${source}: not a file`, EXIT.failed);
    }
    return { blob: await openAsBlob(source), fileName: path.basename(source) };
  } catch (error) {
    if (error instanceof CliError) {
      throw error;
    }
    throw new CliError(`cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.failed);
  }
}

/** The name a URL's audio goes by in messages and output files: its last path segment. */
function urlFileName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '') || 'audio';
}

async function connectionGuard<T>(server: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof CliError || (error as Error).name === 'AbortError') {
      throw error;
    }
    const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
    throw new CliError(`cannot reach the server at ${server}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, EXIT.unavailable);
  }
}

export async function submitCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(SUBMIT_USAGE);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'no FILE or URL given' : 'give exactly one FILE or URL');
  }
  const source = positionals[0] ?? '';
  const server = stringOption(values, 'server') ?? 'http://127.0.0.1:8000';
  if (!URL.canParse(server)) {
    throw new UsageError(`--server is not a URL: ${JSON.stringify(server)}`);
  }
  const task = stringOption(values, 'task');
  if (task !== undefined && task !== 'transcribe' && task !== 'translate') {
    throw new UsageError(`--task must be transcribe or translate, got ${JSON.stringify(task)}`);
  }
  const formats = parseFormats(stringOption(values, 'format'));
  const output = stringOption(values, 'output') ?? '-';
  const pollMs = intOption(values, 'poll-ms', 50, 600_000) ?? 500;
  const wait = values.wait === true;

  const controller = new AbortController();
  const { signal } = controller;
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const client = createClient<paths>({ baseUrl: server.replace(/\/+$/, '') });
    const model = stringOption(values, 'model');
    const language = stringOption(values, 'language');
    const fields: Pick<components['schemas']['JobSubmission'], 'model' | 'language' | 'task'> = {
      ...(model !== undefined ? { model } : {}),
      ...(language !== undefined ? { language } : {}),
      ...(task === 'transcribe' || task === 'translate' ? { task } : {}),
    };
    const isUrl = /^https?:\/\//i.test(source);
    // A URL goes to the server, which downloads it under its own SSRF policy; a file is uploaded.
    const audio = isUrl ? { blob: null, fileName: urlFileName(source) } : await loadAudio(source);
    const created = await connectionGuard(
      server,
      audio.blob === null
        ? client.POST('/jobs/from-url', { body: { url: source, ...fields }, signal })
        : client.POST('/jobs', {
            body: { file: audio.fileName, ...fields },
            // The typed body names the fields; the form carries the file itself.
            bodySerializer: (body) => {
              const form = new FormData();
              for (const [name, value] of Object.entries(body)) {
                if (name !== 'file') {
                  form.append(name, String(value));
                }
              }
              form.append('file', audio.blob, audio.fileName);
              return form;
            },
            signal,
          }),
    );
    if (!created.data) {
      throw new CliError(problemMessage(created.response.status, created.error), EXIT.failed);
    }
    let job = created.data;
    if (!wait) {
      process.stdout.write(`${JSON.stringify(job)}\n`);
      return EXIT.ok;
    }
    process.stderr.write(`submitted ${audio.fileName} as job ${job.id}\n`);
    const bar = createProgressBar(process.stderr, audio.fileName);
    const showJob = (current: Pick<Job, 'status' | 'progress'>): void => bar.update(current.progress / 100, current.status);
    // Live progress from the server's events when it has them, between polls; the job's own record, polled,
    // decides when it is over, so an unexpected event format can never make this wait forever.
    const events = new AbortController();
    let status: Job['status'] = job.status;
    const following = followJobEvents(`${server.replace(/\/+$/, '')}/jobs/${encodeURIComponent(job.id)}/events`, AbortSignal.any([signal, events.signal]), (event) => {
      const current = (typeof event.job === 'object' && event.job !== null ? event.job : event) as Record<string, unknown>;
      // `status` events carry the status and progress; `progress` events only the progress.
      if (typeof current.status === 'string') {
        status = current.status as Job['status'];
      }
      if (typeof current.progress === 'number') {
        showJob({ progress: current.progress, status });
      }
      return false;
    });
    try {
      for (;;) {
        const polled = await connectionGuard(server, client.GET('/jobs/{id}', { params: { path: { id: job.id } }, signal }));
        if (!polled.data) {
          throw new CliError(problemMessage(polled.response.status, polled.error), EXIT.failed);
        }
        job = polled.data;
        showJob(job);
        if (TERMINAL.has(job.status)) {
          break;
        }
        await sleep(pollMs, undefined, { signal });
      }
    } finally {
      events.abort();
      await following;
    }
    if (job.status !== 'completed') {
      bar.finish(`job ${job.id} ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ''}`);
      return EXIT.failed;
    }
    bar.finish(`job ${job.id} completed`);
    if (output !== '-') {
      await mkdir(path.resolve(output), { recursive: true });
    }
    for (const format of formats) {
      const result = await connectionGuard(
        server,
        client.GET('/jobs/{id}/result', { params: { path: { id: job.id }, query: { format } }, parseAs: 'text', signal }),
      );
      if (result.data === undefined) {
        throw new CliError(problemMessage(result.response.status, result.error), EXIT.failed);
      }
      const body = result.data;
      if (output === '-') {
        process.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
      } else {
        const base = path.basename(audio.fileName, path.extname(audio.fileName));
        const target = path.resolve(output, format === 'verbose_json' ? `${base}.verbose.json` : `${base}.${format}`);
        await writeFile(target, body);
        process.stderr.write(`wrote ${target}\n`);
      }
    }
    return EXIT.ok;
  } catch (error) {
    if (signal.aborted) {
      throw new CliError('interrupted', EXIT.interrupted);
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
