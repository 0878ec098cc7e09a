/**
 * @module cli/transcribe
 * `cesar transcribe FILE...`: transcribes local files without a server, through the same path as a job
 * (ffmpeg normalization, then the worker pool running sherpa-onnx in a child process, then the same renderers).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

import { bundledFfmpegPath, createFfmpeg } from '../audio/ffmpeg.ts';
import { listOf } from '../domain.ts';
import type { JobTask, ResultFormat } from '../domain.ts';
import { isAppError } from '../errors.ts';
import { checkModelRequest } from '../transcription/model-request.ts';
import { createModelCatalog } from '../transcription/models.ts';
import type { InstalledModel } from '../transcription/models.ts';
import { createTranscriptionPool } from '../transcription/worker-pool.ts';
import { renderTranscript } from '../transcripts/render-transcript.ts';
import { parseCommandArgs, stringOption } from './args.ts';
import type { OptionSpec } from './args.ts';
import { CliError, EXIT, UsageError } from './exit-codes.ts';
import { createProgressBar } from './progress.ts';
import { commandConfig } from './settings.ts';

export const TRANSCRIBE_USAGE = `Usage: cesar transcribe [options] FILE...

Transcribes audio or video files on this machine, without a server, with the same engine as the service.
Writes FILE's base name with each format's extension into the output directory.

Options:
  --model NAME          installed model to use (default: CESAR_DEFAULT_MODEL, else base)
  --language CODE       spoken language (en, de, ...); detected by multilingual models when absent
  --task TASK           transcribe (default) or translate (to English; multilingual models only)
  --format LIST         txt, json, verbose_json, srt, vtt, or several separated by commas (default: txt)
  --output DIR          directory to write to (default: the current one); - writes to standard output
  --models-dir DIR      where the models are (default: CESAR_MODELS_DIR, else ./models)
  -h, --help            show this help

Exit codes: 0 every file was transcribed; 1 at least one file failed (the others are still written);
2 bad arguments; 3 the model is not installed; 130 interrupted.
`;

const OPTIONS: OptionSpec = {
  model: { type: 'string' },
  language: { type: 'string' },
  task: { type: 'string' },
  format: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'models-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const RESULT_FORMATS: readonly ResultFormat[] = listOf<ResultFormat>()(['txt', 'json', 'verbose_json', 'srt', 'vtt']);

export function parseFormats(raw: string | undefined): ResultFormat[] {
  const formats = (raw ?? 'txt').split(',').map((format) => format.trim());
  for (const format of formats) {
    if (!(RESULT_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--format must be one or more of ${RESULT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    }
  }
  return [...new Set(formats as ResultFormat[])];
}

function outputName(file: string, format: ResultFormat, extension: string): string {
  const base = path.basename(file, path.extname(file));
  return format === 'verbose_json' ? `${base}.verbose.json` : `${base}.${extension}`;
}

function checkRequest(model: InstalledModel, language: string | null, task: JobTask): void {
  const refused = checkModelRequest(model, { language, task });
  if (refused !== null) {
    const known = refused.code === 'unsupported_language' ? ` It knows: ${model.languages.join(', ')}.` : '';
    throw new CliError(`${refused.message}${known}`, EXIT.usage);
  }
}

export async function transcribeCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals: files } = parseCommandArgs(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(TRANSCRIBE_USAGE);
    return EXIT.ok;
  }
  if (files.length === 0) {
    throw new UsageError('no FILE given');
  }
  const taskOption = stringOption(values, 'task') ?? 'transcribe';
  if (taskOption !== 'transcribe' && taskOption !== 'translate') {
    throw new UsageError(`--task must be transcribe or translate, got ${JSON.stringify(taskOption)}`);
  }
  const task: JobTask = taskOption;
  const language = stringOption(values, 'language') ?? null;
  if (language !== null && !/^[a-z]{2,3}$/.test(language)) {
    throw new UsageError(`--language must be a language code such as en or de, got ${JSON.stringify(language)}`);
  }
  const formats = parseFormats(stringOption(values, 'format'));
  const output = stringOption(values, 'output') ?? '.';
  const config = commandConfig(process.env, process.cwd(), {
    CESAR_MODELS_DIR: stringOption(values, 'models-dir'),
    CESAR_DEFAULT_MODEL: stringOption(values, 'model'),
  });

  const scan = await createModelCatalog(config.modelsDir).scan();
  const model = scan.models.find((candidate) => candidate.name === config.defaultModel);
  if (!model) {
    const installed = scan.models.map((candidate) => candidate.name);
    throw new CliError(
      `the model ${config.defaultModel} is not installed in ${config.modelsDir}` +
        ` (installed: ${installed.length > 0 ? installed.join(', ') : 'none'}); install it with: npx cesar models download ${config.defaultModel} --models-dir ${config.modelsDir}`,
      EXIT.unavailable,
    );
  }
  checkRequest(model, language, task);
  if (output !== '-') {
    await mkdir(path.resolve(output), { recursive: true });
  }

  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new CliError('interrupted', EXIT.interrupted));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ffmpeg = createFfmpeg({ binaryPath: config.ffmpegPath ?? bundledFfmpegPath(), timeoutMs: config.ffmpegTimeoutMs });
  const pool = createTranscriptionPool({ workers: 1 });
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'cesar-transcribe-'));
  let failures = 0;
  try {
    for (const [index, file] of files.entries()) {
      const bar = createProgressBar(process.stderr, `${path.basename(file)}`);
      bar.update(0, 'decoding');
      try {
        const pcmPath = path.join(workDir, `${index}.pcm`);
        const audio = await ffmpeg.normalize(path.resolve(file), pcmPath, controller.signal);
        const transcript = await pool.run(
          {
            pcmPath,
            model: { name: model.name, ...model.files, multilingual: model.multilingual, languages: model.languages, wordTimestamps: model.wordTimestamps },
            vadModel: scan.vadModel,
            language,
            task,
            wordTimestamps: model.wordTimestamps,
          },
          {
            signal: controller.signal,
            onProgress: (message) => {
              const total = message.durationSeconds || audio.durationSeconds;
              bar.update(total > 0 ? message.processedSeconds / total : null, `${message.processedSeconds.toFixed(0)}/${total.toFixed(0)} s`);
            },
          },
        );
        await rm(pcmPath, { force: true });
        const context = { jobId: randomUUID(), model: model.name, task };
        const written: string[] = [];
        for (const format of formats) {
          const rendered = renderTranscript(transcript, format, context);
          if (output === '-') {
            process.stdout.write(rendered.body.endsWith('\n') ? rendered.body : `${rendered.body}\n`);
          } else {
            const target = path.resolve(output, outputName(file, format, rendered.extension));
            await writeFile(target, rendered.body);
            written.push(target);
          }
        }
        bar.finish(`${file}: done (${transcript.durationSeconds.toFixed(1)} s of audio)${written.length > 0 ? ` -> ${written.join(', ')}` : ''}`);
      } catch (error) {
        if (controller.signal.aborted) {
          bar.finish(`${file}: interrupted`);
          throw controller.signal.reason as Error;
        }
        failures += 1;
        const message = isAppError(error) ? `${error.code}: ${error.message}` : (error as Error).message;
        bar.finish(`${file}: failed: ${message}`);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pool.destroy();
    await rm(workDir, { recursive: true, force: true });
  }
  return failures > 0 ? EXIT.failed : EXIT.ok;
}
