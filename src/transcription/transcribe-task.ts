/**
 * @module transcription/transcribe-task
 * The tinypool entry: runs inside a child process, never in the server, because native failures of the speech
 * engine end the hosting process, and a child process confines that to one job. The only module that imports
 * `sherpa-onnx-node`; it loads the engine, keeps a recognizer between jobs, and reports to the parent. What to
 * decode and what the decoded tokens mean are decided by pure modules (`speech-windows.ts`, `segmentation.ts`,
 * `language-vote.ts`).
 */
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { pcmChunks, pcmDurationSeconds, SAMPLE_RATE } from '../audio/pcm.ts';
import { LanguageVote } from './language-vote.ts';
import { checkModelRequest } from './model-request.ts';
import type { DecodedWindow, SpeechInterval } from './segmentation.ts';
import { windowSegments } from './segmentation.ts';
import { decodeFixedWindows, decodeSpeechWindows, engineWindows } from './speech-windows.ts';
import type { DecodeSpan, VoiceDetector } from './speech-windows.ts';
import type { LastDecodeMessage, ProgressMessage, TaskOutput, TranscribeTaskInput, WorkerReport } from './task-messages.ts';
import type { TranscriptSegment } from '../transcripts/transcript.ts';

const require = createRequire(import.meta.url);

/** Fewer than 80 samples crash the engine; anything under 0.1 s holds no word anyway. */
const MIN_DECODE_SAMPLES = 1600;
/** Through a long silence, progress is reported after every this many seconds of audio. */
const SILENCE_PROGRESS_SECONDS = 30;

type SherpaResult = DecodedWindow;

interface SherpaStream {
  acceptWaveform(wave: { samples: Float32Array; sampleRate: number }): void;
  handle: unknown;
}

interface SherpaRecognizer {
  createStream(): SherpaStream;
  decodeAsync(stream: SherpaStream): Promise<SherpaResult>;
}

interface SherpaVad {
  acceptWaveform(samples: Float32Array): void;
  isEmpty(): boolean;
  front(enableExternalBuffer: boolean): { start: number; samples: Float32Array };
  pop(): void;
  flush(): void;
  reset(): void;
  clear(): void;
}

interface SherpaModule {
  OfflineRecognizer: { createAsync(config: unknown): Promise<SherpaRecognizer> };
  Vad: new (config: unknown, bufferSizeInSeconds: number) => SherpaVad;
}

interface SherpaAddon {
  getOfflineStreamResultAsJson(handle: unknown): string;
}

const sherpa = require('sherpa-onnx-node') as SherpaModule;

// The server that forked this worker is gone (killed): its job will be run again by the next server, so stop
// decoding for no one rather than hold a core and memory until the audio ends.
process.on('disconnect', () => process.exit(1));
const addon = require('sherpa-onnx-node/addon.js') as SherpaAddon;

/** A failure with a registered error code, serialized across the process boundary by tinypool. */
function taskError(code: 'transcription_failed' | 'unsupported_language' | 'unsupported_task', message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Recognizers stay loaded between jobs; a job for another model or settings swaps the loaded one. */
let loaded: { key: string; model: string; recognizer: SherpaRecognizer } | null = null;
let jobsDone = 0;

function workerReport(): WorkerReport {
  return {
    pid: process.pid,
    model: loaded?.model ?? null,
    rssBytes: process.memoryUsage.rss(),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    jobs: jobsDone,
  };
}

async function recognizerFor(input: TranscribeTaskInput): Promise<SherpaRecognizer> {
  const { model } = input;
  const language = model.multilingual ? (input.language ?? '') : '';
  // Token timestamps whenever the model has them: they place segment boundaries even when words are not kept.
  const timestamps = model.wordTimestamps;
  const key = JSON.stringify([model.encoder, model.decoder, language, input.task, timestamps]);
  if (loaded?.key === key) {
    return loaded.recognizer;
  }
  loaded = null;
  const recognizer = await sherpa.OfflineRecognizer.createAsync({
    modelConfig: {
      whisper: {
        encoder: model.encoder,
        decoder: model.decoder,
        language,
        task: input.task,
        tailPaddings: -1,
        // Numbers, not booleans: the addon ignores `true`.
        enableTokenTimestamps: timestamps ? 1 : 0,
      },
      tokens: model.tokens,
      numThreads: 1,
      provider: 'cpu',
      debug: 0,
    },
    decodingMethod: 'greedy_search',
  });
  loaded = { key, model: model.name, recognizer };
  return recognizer;
}

async function decodeResult(recognizer: SherpaRecognizer, samples: Float32Array): Promise<SherpaResult> {
  const stream = recognizer.createStream();
  stream.acceptWaveform({ samples, sampleRate: SAMPLE_RATE });
  try {
    return await recognizer.decodeAsync(stream);
  } catch (error) {
    if (!(error instanceof SyntaxError)) {
      throw error;
    }
    // The addon writes control characters of a token unescaped into its JSON; escape them and parse again.
    const raw = addon.getOfflineStreamResultAsJson(stream.handle);
    return JSON.parse(raw.replace(/[\u0000-\u001f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)) as SherpaResult;
  }
}


/**
 * The VAD stays loaded between jobs like the recognizer: creating one loads its ONNX session, which cost about
 * 0.3 s of a loaded core per job. `reset()` clears its state and sample count, `clear()` any segment a failed
 * job left queued: each job sees a fresh detector (same segments, checked against a new one).
 */
let loadedVad: { model: string; vad: SherpaVad } | null = null;

function sileroVad(vadModel: string): SherpaVad {
  if (loadedVad?.model === vadModel) {
    loadedVad.vad.clear();
    loadedVad.vad.reset();
    return loadedVad.vad;
  }
  const vad = new sherpa.Vad(
    {
      sileroVad: {
        model: vadModel,
        threshold: 0.5,
        minSilenceDuration: 0.5,
        minSpeechDuration: 0.25,
        maxSpeechDuration: 20,
        windowSize: 512,
      },
      sampleRate: SAMPLE_RATE,
      numThreads: 1,
      provider: 'cpu',
      debug: false,
    },
    60,
  );
  loadedVad = { model: vadModel, vad };
  return vad;
}

/** The Silero VAD, configured for speech windows, behind the interface the windowing needs. */
function sileroDetector(vadModel: string): VoiceDetector {
  const vad = sileroVad(vadModel);
  return {
    acceptWaveform: (samples) => vad.acceptWaveform(samples),
    isEmpty: () => vad.isEmpty(),
    // Copy out of the native buffer: `pop()` frees what an external buffer would point at.
    front: () => vad.front(false),
    pop: () => vad.pop(),
    flush: () => vad.flush(),
  };
}

function reportLastDecode(): void {
  const message: LastDecodeMessage = { type: 'cesar:last-decode' };
  process.send?.(message);
}

export default async function transcribe(input: TranscribeTaskInput): Promise<TaskOutput> {
  const taskStarted = performance.now();
  const refused = checkModelRequest(input.model, input);
  if (refused !== null) {
    throw taskError(refused.code, refused.message);
  }
  const recognizer = await recognizerFor(input);
  const durationSeconds = pcmDurationSeconds((await stat(input.pcmPath)).size);
  const segments: TranscriptSegment[] = [];
  const languages = new LanguageVote();
  let recognizerMs = 0;
  let decodedSamples = 0;
  let decodes = 0;

  const decodeSpan: DecodeSpan = async (startSample: number, samples: Float32Array, speech: readonly SpeechInterval[]): Promise<void> => {
    let offset = startSample;
    for (const window of engineWindows(samples)) {
      const start = offset / SAMPLE_RATE;
      const end = (offset + window.length) / SAMPLE_RATE;
      offset += window.length;
      if (window.length < MIN_DECODE_SAMPLES) {
        continue;
      }
      const decodeStarted = performance.now();
      const result = await decodeResult(recognizer, window);
      recognizerMs += performance.now() - decodeStarted;
      decodedSamples += window.length;
      decodes++;
      const decoded = windowSegments(result, { start, end, speech, keepWords: input.wordTimestamps });
      if (decoded.spoken && result.lang) {
        languages.add(result.lang, window.length);
      }
      const found: TranscriptSegment[] = [];
      for (const piece of decoded.segments) {
        const segment = { id: segments.length, ...piece };
        segments.push(segment);
        found.push(segment);
      }
      // One message per segment, so that live followers see every one; the window's last message, or a
      // message without a segment, carries the window's end as the progress.
      const messages = found.length > 0 ? found : [null];
      messages.forEach((segment, index) => {
        const processedSeconds = index === messages.length - 1 ? end : Math.min(end, segment?.end ?? end);
        const message: ProgressMessage = { type: 'cesar:progress', processedSeconds, durationSeconds, segment, worker: workerReport() };
        process.send?.(message);
      });
    }
  };

  if (input.vadModel !== null) {
    let reportedSeconds = 0;
    await decodeSpeechWindows(sileroDetector(input.vadModel), pcmChunks(input.pcmPath), decodeSpan, (doneSeconds) => {
      if (doneSeconds - reportedSeconds >= SILENCE_PROGRESS_SECONDS) {
        reportedSeconds = doneSeconds;
        const message: ProgressMessage = { type: 'cesar:progress', processedSeconds: doneSeconds, durationSeconds, segment: null, worker: workerReport() };
        process.send?.(message);
      }
    }, reportLastDecode);
  } else {
    await decodeFixedWindows(pcmChunks(input.pcmPath), decodeSpan, reportLastDecode);
  }

  jobsDone++;
  return {
    transcript: { ...languages.outcome({ language: input.language, multilingual: input.model.multilingual }), durationSeconds, segments },
    worker: workerReport(),
    recognizerMs,
    taskMs: performance.now() - taskStarted,
    decodedSeconds: decodedSamples / SAMPLE_RATE,
    decodes,
  };
}
