/**
 * @module cli/models
 * `cesar models` lists the installed models; `cesar models download NAME` installs an official release archive
 * (see transcription/model-download.ts), and the VAD model with it when it is missing.
 */
import process from 'node:process';

import { createModelCatalog, VAD_MODEL_FILE } from '../transcription/models.ts';
import {
  DEFAULT_DOWNLOAD_TIMEOUT_MS,
  DownloadError,
  installVadModel,
  installWhisperModel,
  isValidModelName,
  manualInstallHint,
  VAD_NAMES,
} from '../transcription/model-download.ts';
import type { InstallOptions } from '../transcription/model-download.ts';
import { intOption, parseCommandArgs, stringOption } from './args.ts';
import type { OptionSpec } from './args.ts';
import { CliError, EXIT, UsageError } from './exit-codes.ts';
import { createProgressBar, formatBytes } from './progress.ts';
import { commandConfig } from './settings.ts';

export const MODELS_USAGE = `Usage: cesar models [--models-dir DIR] [--json]
       cesar models download NAME [options]

Lists the installed Whisper models with their size and what they can do, or downloads an official
sherpa-onnx release (NAME: tiny.en, tiny, base.en, base, small.en, small, medium.en, medium, large-v3,
turbo, distil-small.en..., or silero_vad for the voice-activity model alone). Downloading a Whisper
model also installs silero_vad.onnx when it is missing. Files are checked and moved into place only
when complete, so a failed download leaves nothing behind.

Options:
  --models-dir DIR      where the models are (default: CESAR_MODELS_DIR, else ./models)
  --json                list as JSON
  --base-url URL        where the release files are (default: CESAR_MODELS_BASE_URL, else
                        https://github.com/k2-fsa/sherpa-onnx/releases/download/asr-models/)
  --sha256 HEX          expected SHA-256 of the downloaded file
  --force               replace an installed copy
  --timeout-ms N        give up when the server has not answered (or sent anything) for N ms (default 15000)
  -h, --help            show this help

Exit codes: 0 done; 1 the download or its verification failed; 2 bad arguments;
3 the release server cannot be reached (offline).
`;

const OPTIONS: OptionSpec = {
  'models-dir': { type: 'string' },
  json: { type: 'boolean' },
  'base-url': { type: 'string' },
  sha256: { type: 'string' },
  force: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

async function listModels(modelsDir: string, defaultModel: string, json: boolean): Promise<number> {
  const scan = await createModelCatalog(modelsDir).scan();
  if (json) {
    process.stdout.write(`${JSON.stringify({ models_dir: modelsDir, default_model: defaultModel, vad_model: scan.vadModel, models: scan.models, broken: scan.broken }, null, 2)}\n`);
    return EXIT.ok;
  }
  process.stdout.write(`Models in ${modelsDir}:\n`);
  if (scan.models.length === 0 && scan.broken.length === 0) {
    process.stdout.write(`  none installed; install one with: npx cesar models download ${defaultModel} --models-dir ${modelsDir}\n`);
  }
  const rows = scan.models.map((model) => [
    `${model.name}${model.name === defaultModel ? ' (default)' : ''}`,
    formatBytes(model.sizeBytes),
    model.multilingual ? `multilingual (${model.languages.length} languages), translate` : 'English only',
    model.wordTimestamps ? 'word timestamps' : 'segment timestamps',
  ]);
  const widths = [0, 1, 2].map((column) => Math.max(0, ...rows.map((row) => row[column]?.length ?? 0)));
  for (const row of rows) {
    process.stdout.write(`  ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()}\n`);
  }
  for (const broken of scan.broken) {
    process.stdout.write(`  ${broken.name}  BROKEN: ${broken.reason}\n`);
  }
  process.stdout.write(
    scan.vadModel ? `VAD model: ${scan.vadModel}\n` : `VAD model: missing (${VAD_MODEL_FILE}); install it with: npx cesar models download silero_vad --models-dir ${modelsDir}\n`,
  );
  return EXIT.ok;
}

async function downloadModel(name: string, options: InstallOptions): Promise<number> {
  const label = VAD_NAMES.includes(name) ? VAD_MODEL_FILE : name;
  const progressFor = (what: string) => {
    const bar = createProgressBar(process.stderr, what);
    return {
      bar,
      onProgress: ({ receivedBytes, totalBytes }: { receivedBytes: number; totalBytes: number | null }) =>
        bar.update(totalBytes ? receivedBytes / totalBytes : null, `${formatBytes(receivedBytes)}${totalBytes ? ` of ${formatBytes(totalBytes)}` : ''}`),
    };
  };
  try {
    if (!VAD_NAMES.includes(name)) {
      const { bar, onProgress } = progressFor(label);
      const model = await installWhisperModel(name, { ...options, onProgress });
      bar.finish(`installed ${model.name} in ${model.dir} (${formatBytes(model.sizeBytes)}, ${model.multilingual ? 'multilingual' : 'English only'})`);
    }
    const scan = await createModelCatalog(options.modelsDir).scan();
    if (VAD_NAMES.includes(name) || scan.vadModel === null) {
      const { bar, onProgress } = progressFor(VAD_MODEL_FILE);
      const vadOptions = VAD_NAMES.includes(name) ? options : { ...options, sha256: undefined, force: false };
      const file = await installVadModel({ ...vadOptions, onProgress });
      bar.finish(`installed ${file}`);
    }
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof DownloadError)) {
      throw error;
    }
    if (process.stderr.isTTY) {
      process.stderr.write('\n');
    }
    if (error.kind === 'unreachable') {
      throw new CliError(`${error.message}. Are you offline? ${manualInstallHint(name, options.baseUrl, options.modelsDir)}`, EXIT.unavailable);
    }
    if (error.kind === 'aborted') {
      throw new CliError(`${error.message}; nothing was installed`, EXIT.interrupted);
    }
    const hint = error.kind === 'http' ? ` Is ${name} the name of an official release (see --help)?` : '';
    throw new CliError(`${error.message}; nothing was installed.${hint}`, EXIT.failed);
  }
}

export async function modelsCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(MODELS_USAGE);
    return EXIT.ok;
  }
  const config = commandConfig(process.env, process.cwd(), { CESAR_MODELS_DIR: stringOption(values, 'models-dir') });
  const [action, name, ...extra] = positionals;
  if (action === undefined || action === 'list') {
    if (name !== undefined) {
      throw new UsageError(`unexpected argument ${JSON.stringify(name)}`);
    }
    return listModels(config.modelsDir, config.defaultModel, values.json === true);
  }
  if (action !== 'download') {
    throw new UsageError(`unknown action ${JSON.stringify(action)}`);
  }
  if (name === undefined || extra.length > 0) {
    throw new UsageError(name === undefined ? 'download needs a model NAME' : `download takes one NAME, got ${[name, ...extra].join(' ')}`);
  }
  if (!isValidModelName(name)) {
    throw new UsageError(`not a model name: ${JSON.stringify(name)}`);
  }
  const sha256 = stringOption(values, 'sha256');
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    throw new UsageError('--sha256 must be 64 hexadecimal digits');
  }
  const baseUrl = stringOption(values, 'base-url') ?? config.modelsBaseUrl;
  if (!URL.canParse(baseUrl)) {
    throw new UsageError(`--base-url is not a URL: ${JSON.stringify(baseUrl)}`);
  }
  const timeoutMs = intOption(values, 'timeout-ms', 100, 3_600_000) ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await downloadModel(name, {
      modelsDir: config.modelsDir,
      baseUrl,
      sha256,
      force: values.force === true,
      signal: controller.signal,
      connectTimeoutMs: timeoutMs,
      idleTimeoutMs: timeoutMs,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
