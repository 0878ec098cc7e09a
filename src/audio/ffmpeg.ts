/**
 * @module audio/ffmpeg
 * The only module that runs ffmpeg. It turns any audio or video container into raw 16 kHz mono s16le, which
 * is what the speech engine wants, streaming from file to file.
 *
 * Hostile input is the norm for an upload: the argument vector (never a shell) allows only the `file`
 * protocol and a whitelist of real containers, because `-protocol_whitelist file` alone still lets an HLS
 * playlist or a concat script read other local files.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { AppError } from '../errors.ts';

const require = createRequire(import.meta.url);

export const SAMPLE_RATE = 16_000;
/** Demuxers of real audio and video containers; playlists, concat scripts and image sequences are absent. */
export const ALLOWED_FORMATS = ['wav', 'w64', 'mp3', 'flac', 'ogg', 'mov', 'matroska', 'webm', 'aac', 'aiff', 'caf', 'amr', 'asf'];
const STDERR_LIMIT_BYTES = 64 * 1024;

export interface NormalizedAudio {
  durationSeconds: number;
  /** The container's start time; timestamps of the transcript are relative to the first audio sample. */
  startTimeSeconds: number;
}

export interface Ffmpeg {
  readonly binaryPath: string;
  /** Writes raw 16 kHz mono s16le samples of `inputPath`'s first audio stream to `outputPath`. */
  normalize(inputPath: string, outputPath: string, signal: AbortSignal): Promise<NormalizedAudio>;
}

export function bundledFfmpegPath(): string {
  return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
}

/** Maps ffmpeg's complaint to a code; the stderr tail goes to the server log (as `cause`), never to clients. */
function classify(stderr: string): AppError {
  const cause = new Error(stderr.trim().split('\n').slice(-3).join(' | '));
  if (/not on whitelist/i.test(stderr)) {
    return new AppError('undecodable_media', 'The file is not in a supported audio or video container.', {}, { cause });
  }
  if (/matches no streams|does not contain any stream|Output file #0 does not contain any stream/i.test(stderr)) {
    return new AppError('no_audio_stream', 'The file has no audio stream.', {}, { cause });
  }
  return new AppError('undecodable_media', 'The file could not be decoded as audio or video.', {}, { cause });
}

function parseStartTime(stderr: string): number {
  const match = /Duration: [^,]+, start: (-?\d+(?:\.\d+)?)/.exec(stderr);
  const value = match?.[1] === undefined ? 0 : Number(match[1]);
  return Number.isFinite(value) && value > 0 ? value : 0;
}

export function createFfmpeg(options: { binaryPath: string; timeoutMs: number }): Ffmpeg {
  const { binaryPath, timeoutMs } = options;
  return {
    binaryPath,
    async normalize(inputPath, outputPath, signal) {
      const args = [
        '-nostdin',
        '-hide_banner',
        '-nostats',
        '-protocol_whitelist',
        'file',
        '-format_whitelist',
        ALLOWED_FORMATS.join(','),
        '-i',
        `file:${inputPath}`,
        '-map',
        '0:a:0',
        '-vn',
        '-sn',
        '-dn',
        '-ac',
        '1',
        '-ar',
        String(SAMPLE_RATE),
        '-acodec',
        'pcm_s16le',
        '-f',
        's16le',
        '-y',
        `file:${outputPath}`,
      ];
      const timeout = AbortSignal.timeout(timeoutMs);
      const child = spawn(binaryPath, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        signal: AbortSignal.any([signal, timeout]),
        killSignal: 'SIGKILL',
      });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text: string) => {
        if (stderr.length < STDERR_LIMIT_BYTES) {
          stderr += text;
        }
      });
      const exitCode = await new Promise<number | null>((resolve, reject) => {
        child.once('error', (error) => {
          if (signal.aborted) {
            reject(signal.reason as Error);
          } else if (timeout.aborted) {
            reject(new AppError('undecodable_media', `Decoding the file took longer than ${timeoutMs} ms.`));
          } else {
            reject(error);
          }
        });
        child.once('close', resolve);
      });
      if (exitCode !== 0) {
        throw classify(stderr);
      }
      const { size } = await stat(outputPath);
      if (size < 2) {
        throw new AppError('empty_audio', 'The audio stream has no samples.');
      }
      return { durationSeconds: size / 2 / SAMPLE_RATE, startTimeSeconds: parseStartTime(stderr) };
    },
  };
}
