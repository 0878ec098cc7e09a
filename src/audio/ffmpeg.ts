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
import { pcmDurationSeconds, SAMPLE_RATE } from './pcm.ts';

const require = createRequire(import.meta.url);

/** Demuxers of real audio and video containers; playlists, concat scripts and image sequences are absent. */
export const ALLOWED_FORMATS = ['wav', 'w64', 'mp3', 'flac', 'ogg', 'mov', 'matroska', 'webm', 'aac', 'aiff', 'caf', 'amr', 'asf'];
const STDERR_LIMIT_BYTES = 64 * 1024;
/** Declared durations are rounded and frames overhang: this much over the limit still passes. */
const DURATION_TOLERANCE_SECONDS = 0.5;

export interface NormalizedAudio {
  durationSeconds: number;
  /**
   * The container's start time as ffmpeg reports it. Decoding pads the gap between it and the first audio
   * sample with silence, so transcript times are on the media's own timeline (a late audio track in a video
   * keeps its place).
   */
  startTimeSeconds: number;
}

export interface MediaProbe {
  /** What the container declares; null when it does not say (raw streams). */
  durationSeconds: number | null;
  startTimeSeconds: number;
  hasAudio: boolean;
}

export interface Ffmpeg {
  readonly binaryPath: string;
  /** Reads the container's header only: streams, declared duration, start time. Refuses what cannot be opened. */
  probe(inputPath: string, signal: AbortSignal): Promise<MediaProbe>;
  /**
   * Writes raw 16 kHz mono s16le samples of `inputPath`'s first audio stream to `outputPath`. Media without
   * audio, or declared longer than the limit, is refused as soon as ffmpeg has read its header.
   */
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

function parseDuration(stderr: string): number | null {
  const match = /Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)/.exec(stderr);
  if (!match) {
    return null;
  }
  return Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}

function tooLong(limitSeconds: number): AppError {
  return new AppError('media_too_long', `The audio is longer than the limit of ${limitSeconds} seconds.`, { limit_seconds: limitSeconds });
}

/** Options every ffmpeg run starts with: no stdin, local files only, real containers only. */
function inputArgs(inputPath: string): string[] {
  return ['-nostdin', '-hide_banner', '-nostats', '-protocol_whitelist', 'file', '-format_whitelist', ALLOWED_FORMATS.join(','), '-i', `file:${inputPath}`];
}

export function createFfmpeg(options: { binaryPath: string; timeoutMs: number; maxDurationSeconds?: number }): Ffmpeg {
  const { binaryPath, timeoutMs } = options;
  const maxDurationSeconds = options.maxDurationSeconds ?? 0;

  /**
   * Runs ffmpeg under the wall-clock limit and the caller's signal; resolves with its exit code and stderr head.
   * `refuse` sees the stderr head as it grows: an error it returns stops ffmpeg and is thrown.
   */
  const run = async (args: string[], signal: AbortSignal, refuse?: (stderr: string) => AppError | null): Promise<{ exitCode: number | null; stderr: string }> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const child = spawn(binaryPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      signal: AbortSignal.any([signal, timeout]),
      killSignal: 'SIGKILL',
    });
    let stderr = '';
    // Widened on purpose: the stderr handler sets it, which narrowing cannot see.
    let refusal = null as AppError | null;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      if (stderr.length < STDERR_LIMIT_BYTES) {
        stderr += text;
        refusal ??= refuse?.(stderr) ?? null;
        if (refusal) {
          child.kill('SIGKILL');
        }
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
    if (refusal) {
      throw refusal;
    }
    return { exitCode, stderr };
  };

  const probe = async (inputPath: string, signal: AbortSignal): Promise<MediaProbe> => {
    // Without an output ffmpeg only opens the input, prints what it found and exits (with status 1).
    const { stderr } = await run(inputArgs(inputPath), signal);
    if (!/^Input #0, /m.test(stderr)) {
      throw classify(stderr);
    }
    return {
      durationSeconds: parseDuration(stderr),
      startTimeSeconds: parseStartTime(stderr),
      hasAudio: /^\s*Stream #0:\d+.*: Audio: /m.test(stderr),
    };
  };

  return {
    binaryPath,
    probe,
    async normalize(inputPath, outputPath, signal) {
      // One ffmpeg run, not a probe and then a decode: the header it prints before decoding is the probe, and a
      // declared duration over the limit stops it there. A second process per job cost a worker's wait and CPU.
      const declaredTooLong = (stderr: string): AppError | null => {
        const header = /Duration: [^\n]*\n/.exec(stderr);
        const declared = header ? parseDuration(header[0]) : null;
        return maxDurationSeconds > 0 && declared !== null && declared > maxDurationSeconds + DURATION_TOLERANCE_SECONDS ? tooLong(maxDurationSeconds) : null;
      };
      const args = [
        ...inputArgs(inputPath),
        '-map',
        '0:a:0',
        '-vn',
        '-sn',
        '-dn',
        // Silence before a late first sample keeps transcript times on the media's timeline.
        '-af',
        'aresample=async=1:first_pts=0',
        '-ac',
        '1',
        '-ar',
        String(SAMPLE_RATE),
        '-acodec',
        'pcm_s16le',
        // A header can lie about the duration: decoding stops just past the limit whatever it said.
        ...(maxDurationSeconds > 0 ? ['-t', String(maxDurationSeconds + 1)] : []),
        '-f',
        's16le',
        '-y',
        `file:${outputPath}`,
      ];
      const { exitCode, stderr } = await run(args, signal, declaredTooLong);
      if (exitCode !== 0) {
        // No audio stream: `-map 0:a:0` matches nothing, which `classify` reports as no_audio_stream.
        throw classify(stderr);
      }
      const { size } = await stat(outputPath);
      if (size < 2) {
        throw new AppError('empty_audio', 'The audio stream has no samples.');
      }
      const durationSeconds = pcmDurationSeconds(size);
      if (maxDurationSeconds > 0 && durationSeconds > maxDurationSeconds + DURATION_TOLERANCE_SECONDS) {
        throw tooLong(maxDurationSeconds);
      }
      return { durationSeconds, startTimeSeconds: parseStartTime(stderr) };
    },
  };
}
