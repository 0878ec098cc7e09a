/**
 * @module transcription/model-installer
 * The first run: `cesar serve` installs its default Whisper model and the VAD model when they are missing, from
 * the release site, while the server already answers (not ready, with the download's progress). The files are
 * installed by model-download.ts, so a failed or interrupted download leaves nothing behind; a model folder that
 * is there but broken is never replaced (the operator put it there; `GET /health` says what is wrong with it).
 */
import type { Logger } from '../logger.ts';
import { DownloadError, installVadModel, installWhisperModel, manualInstallHint, modelArchiveUrl, vadUrl } from './model-download.ts';
import type { DownloadProgress } from './model-download.ts';
import type { ModelCatalog } from './models.ts';

/** The name the installer gives the VAD model in its state and logs. */
export const VAD_NAME = 'silero_vad';

export interface ModelDownloadState {
  /** The Whisper model's name, or `silero_vad`. */
  model: string;
  url: string;
  receivedBytes: number;
  totalBytes: number | null;
}

/** `installed`: nothing is missing any more; `failed`: something is, and the log says why; `aborted`: shut down. */
export type InstallOutcome = 'installed' | 'failed' | 'aborted';

export interface ModelInstaller {
  /** The download in progress; null when none is. */
  current(): ModelDownloadState | null;
  /** Installs what is missing, one file after the other; never rejects. */
  installMissing(signal: AbortSignal): Promise<InstallOutcome>;
}

export interface ModelInstallerOptions {
  catalog: ModelCatalog;
  defaultModel: string;
  baseUrl: string;
  logger: Logger;
  /** Connect and idle timeout of each download. */
  timeoutMs: number;
}

/** A log line per tenth of the file (or per 16 MB when the size is unknown): progress without flooding the log. */
function progressLogger(logger: Logger, state: ModelDownloadState): (progress: DownloadProgress) => void {
  let lastStep = 0;
  return ({ receivedBytes, totalBytes }) => {
    state.receivedBytes = receivedBytes;
    state.totalBytes = totalBytes;
    const step = totalBytes ? Math.floor((receivedBytes / totalBytes) * 10) : Math.floor(receivedBytes / (16 * 1024 * 1024));
    if (step > lastStep) {
      lastStep = step;
      logger.info('downloading', {
        model: state.model,
        received_bytes: receivedBytes,
        total_bytes: totalBytes,
        percent: totalBytes ? Math.round((receivedBytes / totalBytes) * 100) : null,
      });
    }
  };
}

export function createModelInstaller(options: ModelInstallerOptions): ModelInstaller {
  const { catalog, defaultModel, baseUrl, logger, timeoutMs } = options;
  let current: ModelDownloadState | null = null;

  const fetchOne = async (model: string, signal: AbortSignal): Promise<void> => {
    const url = model === VAD_NAME ? vadUrl(baseUrl) : modelArchiveUrl(baseUrl, model);
    const state: ModelDownloadState = { model, url, receivedBytes: 0, totalBytes: null };
    current = state;
    logger.info(`installing the missing model ${model} from ${url}`, { model, url, models_dir: catalog.modelsDir });
    const install = { modelsDir: catalog.modelsDir, baseUrl, signal, connectTimeoutMs: timeoutMs, idleTimeoutMs: timeoutMs, onProgress: progressLogger(logger, state) };
    try {
      const where = model === VAD_NAME ? await installVadModel(install) : (await installWhisperModel(model, install)).dir;
      logger.info(`installed ${model}`, { model, path: where, bytes: state.receivedBytes });
    } finally {
      current = null;
    }
  };

  return {
    current: () => (current === null ? null : { ...current }),
    async installMissing(signal) {
      const scan = await catalog.scan();
      const missing = [
        ...(scan.models.some((model) => model.name === defaultModel) || scan.broken.some((model) => model.name === defaultModel) ? [] : [defaultModel]),
        ...(scan.vadModel === null ? [VAD_NAME] : []),
      ];
      for (const model of missing) {
        try {
          await fetchOne(model, signal);
        } catch (error) {
          if (error instanceof DownloadError && error.kind === 'exists') {
            // Installed meanwhile by another process (`cesar models download`): what we wanted.
            continue;
          }
          if (signal.aborted || (error instanceof DownloadError && error.kind === 'aborted')) {
            return 'aborted';
          }
          const hint = error instanceof DownloadError && error.kind === 'unreachable' ? ` Are you offline? ${manualInstallHint(model, baseUrl, catalog.modelsDir)}` : '';
          logger.error(`installing ${model} failed: ${(error as Error).message}; nothing was installed.${hint}`, { model, error });
          return 'failed';
        }
      }
      return 'installed';
    },
  };
}
