/**
 * @module transcription/transcribe-task
 * Runs inside a tinypool child process, never in the server: native failures of the speech engine end the
 * hosting process (see `docs/engine.md`), and a child process confines that to one job.
 * The only module that imports `sherpa-onnx-node`.
 *
 * The normalized audio (16 kHz mono s16le) is streamed from disk through Silero VAD; each speech segment is
 * decoded with its absolute start time, so memory stays flat however long the audio is.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { collapseLoops, isOnlyCaption } from './hallucination-guard.ts';
import type { Transcript, TranscriptSegment, TranscriptWord } from './transcript.ts';

const require = createRequire(import.meta.url);

export const SAMPLE_RATE = 16_000;
/** The engine decodes at most 29.5 s at once and silently drops the rest; stay below. */
export const MAX_DECODE_SECONDS = 28;
/** Fewer than 80 samples crash the engine; anything under 0.1 s holds no word anyway. */
const MIN_DECODE_SAMPLES = 1600;

export interface TaskModel {
  name: string;
  encoder: string;
  decoder: string;
  tokens: string;
  multilingual: boolean;
  languages: readonly string[];
  wordTimestamps: boolean;
}

export interface TranscribeTaskInput {
  pcmPath: string;
  model: TaskModel;
  vadModel: string | null;
  language: string | null;
  task: 'transcribe' | 'translate';
  /** Word timestamps asked for (only when the model supports them; the submission refuses otherwise). */
  wordTimestamps: boolean;
}

/** What the worker process reports about itself; the pool decides from it when to recycle the process. */
export interface WorkerReport {
  pid: number;
  /** The model loaded in this process now. */
  model: string | null;
  rssBytes: number;
  /** The most this process has ever held, from the kernel's maxrss. */
  peakRssBytes: number;
  jobs: number;
}

export interface TaskOutput {
  transcript: Transcript;
  worker: WorkerReport;
  /** Wall time spent inside the recognizer's decode calls, for the overhead benchmark. */
  recognizerMs: number;
  /** Wall time of the whole task in this process. */
  taskMs: number;
  /** Audio handed to the recognizer (windows with their padding) and in how many decodes. */
  decodedSeconds: number;
  decodes: number;
}

/**
 * Sent once the worker has read all the audio and started its last decode: the job will free the worker
 * within one window's decode, time enough for the server to prepare the next job.
 */
export interface LastDecodeMessage {
  type: 'cesar:last-decode';
}

/** Sent to the parent after every decoded segment. */
export interface ProgressMessage {
  type: 'cesar:progress';
  processedSeconds: number;
  durationSeconds: number;
  segment: TranscriptSegment | null;
  worker: WorkerReport;
}

interface SherpaResult {
  text: string;
  lang: string;
  tokens: string[];
  timestamps: number[];
  durations: number[];
}

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

/** Refuses, before the engine sees them, the inputs that would make it exit the process. */
function guard(input: TranscribeTaskInput): void {
  const { model, language, task } = input;
  if (language !== null && !model.languages.includes(language)) {
    throw taskError('unsupported_language', `model ${model.name} does not support language ${language}`);
  }
  if (task === 'translate' && !model.multilingual) {
    throw taskError('unsupported_task', `model ${model.name} is English-only and cannot translate`);
  }
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

interface DecodedWord {
  word: string;
  start: number | null;
  end: number | null;
}

/** Groups tokens into words: a token that starts with a space starts a new word; others extend the last one. */
function wordsOf(result: SherpaResult, offsetSeconds: number, endSeconds: number): DecodedWord[] {
  const words: DecodedWord[] = [];
  result.tokens.forEach((token, index) => {
    const start = result.timestamps[index];
    const absoluteStart = start === undefined ? null : Math.min(offsetSeconds + start, endSeconds);
    const absoluteEnd = absoluteStart === null ? null : Math.min(absoluteStart + (result.durations[index] ?? 0), endSeconds);
    const last = words.at(-1);
    if (last === undefined || token.startsWith(' ')) {
      if (token.trim().length > 0) {
        words.push({ word: token.trim(), start: absoluteStart, end: absoluteEnd });
      }
    } else {
      last.word += token;
      if (absoluteEnd !== null) {
        last.end = Math.max(last.end ?? absoluteEnd, absoluteEnd);
      }
    }
  });
  return words;
}

function timedWords(words: readonly DecodedWord[]): TranscriptWord[] {
  const timed: TranscriptWord[] = [];
  for (const { word, start, end } of words) {
    if (start !== null && end !== null) {
      timed.push({ word, start, end });
    }
  }
  // Timestamps come in token order; keep words monotonic even when the aligner hesitates.
  for (let i = 1; i < timed.length; i++) {
    const previous = timed[i - 1];
    const word = timed[i];
    if (previous && word) {
      word.start = Math.max(word.start, previous.start);
      word.end = Math.max(word.end, word.start);
      if (word.start < previous.end) {
        previous.end = word.start;
      }
    }
  }
  return timed;
}

/** Speech found by the VAD, in seconds from the start of the audio. */
interface SpeechInterval {
  start: number;
  end: number;
}

/**
 * Corrects word starts that the aligner puts where the VAD heard no speech. The aligner dates a window's first
 * token at the window's start (its padding), and a word after a pause at the end of the word before it; the
 * VAD's onset is the better time in both cases.
 */
function snapToSpeech(words: TranscriptWord[], windowStart: number, speech: readonly SpeechInterval[]): TranscriptWord[] {
  const first = speech[0];
  const head = words[0];
  if (first && head && head.start - windowStart < 0.05 && first.start > head.start) {
    head.start = Math.min(first.start, head.end);
  }
  for (let i = 1; i < speech.length; i++) {
    const gapStart = speech[i - 1]?.end ?? 0;
    const onset = speech[i]?.start ?? 0;
    for (const word of words) {
      if (word.start > gapStart && word.start < onset && word.end > onset) {
        word.start = onset;
      }
    }
  }
  return words;
}

/** A pause at least this long between two words starts a new segment. */
const SEGMENT_PAUSE_SECONDS = 0.8;
/** Past this length a segment also ends at the end of a sentence. */
const SENTENCE_SEGMENT_SECONDS = 4;

/** Splits the words of one decoded window into segments at pauses and, once long enough, at sentence ends. */
function splitAtPauses(words: readonly TranscriptWord[]): { start: number; end: number; text: string; words: TranscriptWord[] }[] {
  const groups: TranscriptWord[][] = [];
  let current: TranscriptWord[] = [];
  for (const word of words) {
    const previous = current.at(-1);
    const first = current[0];
    if (
      previous &&
      first &&
      (word.start - previous.end >= SEGMENT_PAUSE_SECONDS || (/[.?!。？！]["')\]]?$/u.test(previous.word) && previous.end - first.start >= SENTENCE_SEGMENT_SECONDS))
    ) {
      groups.push(current);
      current = [];
    }
    current.push(word);
  }
  if (current.length > 0) {
    groups.push(current);
  }
  return groups.map((group) => ({
    start: group[0]?.start ?? 0,
    end: Math.max(group.at(-1)?.end ?? 0, group[0]?.start ?? 0),
    text: group.map((word) => word.word).join(' '),
    words: group,
  }));
}

/** Yields the float samples of a raw s16le file in chunks of about one second, reading as it goes. */
async function* pcmChunks(file: string): AsyncGenerator<Float32Array> {
  let carry: Buffer | null = null;
  for await (const piece of createReadStream(file, { highWaterMark: SAMPLE_RATE * 2 }) as AsyncIterable<Buffer>) {
    const bytes: Buffer = carry ? Buffer.concat([carry, piece]) : piece;
    const usable = bytes.length - (bytes.length % 2);
    carry = usable < bytes.length ? bytes.subarray(usable) : null;
    const samples = new Float32Array(usable / 2);
    for (let i = 0; i < samples.length; i++) {
      samples[i] = bytes.readInt16LE(i * 2) / 32768;
    }
    yield samples;
  }
}

/** Cuts a speech span longer than the engine's window into near-equal parts. */
function windows(samples: Float32Array): Float32Array[] {
  const maxSamples = MAX_DECODE_SECONDS * SAMPLE_RATE;
  const parts = Math.ceil(samples.length / maxSamples);
  const size = Math.ceil(samples.length / parts);
  const result: Float32Array[] = [];
  for (let start = 0; start < samples.length; start += size) {
    result.push(samples.subarray(start, Math.min(start + size, samples.length)));
  }
  return result;
}

/** The most recent raw samples, addressed by absolute sample index. */
class SampleHistory {
  private chunks: { start: number; samples: Float32Array }[] = [];
  end = 0;

  push(samples: Float32Array): void {
    this.chunks.push({ start: this.end, samples });
    this.end += samples.length;
  }

  get start(): number {
    return this.chunks[0]?.start ?? this.end;
  }

  forgetBefore(index: number): void {
    while (this.chunks.length > 0) {
      const first = this.chunks[0];
      if (!first || first.start + first.samples.length > index) {
        break;
      }
      this.chunks.shift();
    }
  }

  /** Samples in [from, to), clipped to what is still held. */
  slice(from: number, to: number): Float32Array {
    const begin = Math.max(from, this.start);
    const finish = Math.min(to, this.end);
    const result = new Float32Array(Math.max(0, finish - begin));
    for (const chunk of this.chunks) {
      const lo = Math.max(begin, chunk.start);
      const hi = Math.min(finish, chunk.start + chunk.samples.length);
      if (lo < hi) {
        result.set(chunk.samples.subarray(lo - chunk.start, hi - chunk.start), lo - begin);
      }
    }
    return result;
  }
}

/** Through a long silence, progress is reported after every this many seconds of audio. */
const SILENCE_PROGRESS_SECONDS = 30;
/** Speech found by the VAD is padded by this much on each side: its onset detection clips soft first words. */
const SPEECH_PAD_SAMPLES = Math.round(0.5 * SAMPLE_RATE);
/** A gap shorter than this between two windows (or before the first) is decoded too rather than skipped. */
const JOIN_GAP_SAMPLES = Math.round(3 * SAMPLE_RATE);
/**
 * The VAD dates a speech onset from the end of the buffer it was given, so it is fed one model window at a
 * time: fed a second at once, onsets came up to a second late and first words were cut.
 */
const VAD_FEED_SAMPLES = 512;
/** Audio kept for building windows; a speech span reaching further back is taken from the VAD's own copy. */
const HISTORY_SAMPLES = 120 * SAMPLE_RATE;

/**
 * The VAD stays loaded between jobs like the recognizer: creating one loads its ONNX session, which cost about
 * 0.3 s of a loaded core per job. `reset()` clears its state and sample count: each job sees a fresh detector.
 */
let loadedVad: { model: string; vad: SherpaVad } | null = null;

function vadFor(vadModel: string): SherpaVad {
  if (loadedVad?.model === vadModel) {
    // A failed job may have left speech segments queued, which `reset()` keeps.
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

/**
 * Streams the audio through Silero VAD and decodes windows of real audio (gaps included, so the engine hears
 * natural context) that span consecutive speech up to the engine's limit, cutting only in silence.
 */
async function decodeSpeechWindows(
  vadModel: string,
  pcmPath: string,
  decodeSpan: (startSample: number, samples: Float32Array, speech: readonly SpeechInterval[]) => Promise<void>,
  onSilence: (doneSeconds: number) => void,
  onLastDecode: () => void,
): Promise<void> {
  const vad = vadFor(vadModel);
  const audio = new SampleHistory();
  const maxWindow = MAX_DECODE_SECONDS * SAMPLE_RATE;
  // Widened on purpose: the closures below change it, which narrowing cannot see.
  let pending = null as { start: number; end: number; speech: SpeechInterval[] } | null;
  let decodedUntil = 0;
  let inFlight = null as Promise<void> | null;

  /**
   * Starts decoding a window and returns without waiting for it: the recognizer runs on the libuv pool, so the
   * VAD reads on meanwhile and its cost hides behind the decode. One decode at a time keeps segments in order
   * and memory flat (one window in flight, one being gathered).
   */
  const startDecode = async (startSample: number, samples: Float32Array, speech: readonly SpeechInterval[]): Promise<void> => {
    if (inFlight !== null) {
      await inFlight;
    }
    const running = decodeSpan(startSample, samples, speech);
    inFlight = running;
    // A failed decode stays in flight so that the next await throws it; the handler only keeps it from
    // counting as unhandled meanwhile.
    running.then(
      () => {
        if (inFlight === running) {
          inFlight = null;
        }
      },
      () => {},
    );
  };
  const decodePending = async (): Promise<void> => {
    if (pending !== null) {
      const { start, end, speech } = pending;
      pending = null;
      decodedUntil = end;
      await startDecode(start, audio.slice(start, end), speech);
    }
  };
  const onSpeech = async (speechStart: number, samples: Float32Array): Promise<void> => {
    let start = Math.max(0, speechStart - SPEECH_PAD_SAMPLES);
    const end = speechStart + samples.length + SPEECH_PAD_SAMPLES;
    const interval = { start: speechStart / SAMPLE_RATE, end: (speechStart + samples.length) / SAMPLE_RATE };
    if (pending !== null && end - pending.start <= maxWindow) {
      pending.end = end;
      pending.speech.push(interval);
      return;
    }
    await decodePending();
    // Close to the previous window, the gap may hold words the VAD missed: continue from where it ended.
    if (start - decodedUntil < JOIN_GAP_SAMPLES) {
      start = Math.min(decodedUntil, speechStart);
    }
    if (start < audio.start) {
      await startDecode(speechStart, samples, [interval]);
    } else {
      pending = { start, end, speech: [interval] };
    }
  };
  const drain = async (): Promise<void> => {
    while (!vad.isEmpty()) {
      // Copy out of the native buffer: `pop()` frees what an external buffer would point at.
      const speech = vad.front(false);
      vad.pop();
      await onSpeech(speech.start, speech.samples);
    }
  };
  for await (const chunk of pcmChunks(pcmPath)) {
    audio.push(chunk);
    for (let offset = 0; offset < chunk.length; offset += VAD_FEED_SAMPLES) {
      vad.acceptWaveform(chunk.subarray(offset, offset + VAD_FEED_SAMPLES));
      await drain();
    }
    if (pending !== null && audio.end - pending.start > maxWindow + SPEECH_PAD_SAMPLES) {
      // No speech can join the pending window any more once the audio has moved past its limit.
      await decodePending();
    }
    audio.forgetBefore(Math.min(pending?.start ?? audio.end, audio.end - HISTORY_SAMPLES));
    if (pending === null && inFlight === null) {
      // Nothing waits to be decoded: all the audio read so far is done, and a long silence shows as progress.
      onSilence(audio.end / SAMPLE_RATE);
    }
  }
  vad.flush();
  await drain();
  await decodePending();
  onLastDecode();
  if (inFlight !== null) {
    await inFlight;
  }
}

function reportLastDecode(): void {
  const message: LastDecodeMessage = { type: 'cesar:last-decode' };
  process.send?.(message);
}

export default async function transcribe(input: TranscribeTaskInput): Promise<TaskOutput> {
  const taskStarted = performance.now();
  guard(input);
  const recognizer = await recognizerFor(input);
  const durationSeconds = (await stat(input.pcmPath)).size / 2 / SAMPLE_RATE;
  const segments: TranscriptSegment[] = [];
  /** Samples of decoded windows that gave text, per language the engine reported for them. */
  const languages = new Map<string, number>();
  let recognizerMs = 0;
  let decodedSamples = 0;
  let decodes = 0;

  const decodeSpan = async (startSample: number, samples: Float32Array, speech: readonly SpeechInterval[]): Promise<void> => {
    let offset = startSample;
    for (const window of windows(samples)) {
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
      const decoded = wordsOf(result, start, end);
      const kept = collapseLoops(decoded);
      const text = kept.length === decoded.length ? result.text.trim() : kept.map((word) => word.word).join(' ');
      const found: TranscriptSegment[] = [];
      if (text.length > 0 && !isOnlyCaption(text)) {
        if (result.lang) {
          languages.set(result.lang, (languages.get(result.lang) ?? 0) + window.length);
        }
        const timed = snapToSpeech(timedWords(kept), start, speech);
        const pieces = timed.length === kept.length && timed.length > 0 ? splitAtPauses(timed) : [{ start, end, text, words: [] }];
        for (const piece of pieces) {
          if (isOnlyCaption(piece.text)) {
            continue;
          }
          const segment = { id: segments.length, ...piece, words: input.wordTimestamps && timed.length > 0 ? piece.words : null };
          segments.push(segment);
          found.push(segment);
        }
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
    await decodeSpeechWindows(input.vadModel, input.pcmPath, decodeSpan, (doneSeconds) => {
      if (doneSeconds - reportedSeconds >= SILENCE_PROGRESS_SECONDS) {
        reportedSeconds = doneSeconds;
        const message: ProgressMessage = { type: 'cesar:progress', processedSeconds: doneSeconds, durationSeconds, segment: null, worker: workerReport() };
        process.send?.(message);
      }
    }, reportLastDecode);
  } else {
    // Without a VAD model, fixed windows: words at the cuts may suffer, but nothing is dropped.
    const audio = new SampleHistory();
    let decodedUntil = 0;
    const maxSamples = MAX_DECODE_SECONDS * SAMPLE_RATE;
    for await (const chunk of pcmChunks(input.pcmPath)) {
      audio.push(chunk);
      if (audio.end - decodedUntil >= maxSamples) {
        await decodeSpan(decodedUntil, audio.slice(decodedUntil, decodedUntil + maxSamples), []);
        decodedUntil += maxSamples;
        audio.forgetBefore(decodedUntil);
      }
    }
    reportLastDecode();
    await decodeSpan(decodedUntil, audio.slice(decodedUntil, audio.end), []);
  }

  jobsDone++;
  return {
    transcript: { ...transcriptLanguage(input, languages), durationSeconds, segments },
    worker: workerReport(),
    recognizerMs,
    taskMs: performance.now() - taskStarted,
    decodedSeconds: decodedSamples / SAMPLE_RATE,
    decodes,
  };
}

/**
 * The language of the transcript. The engine detects a language per window and gives no probability, so the
 * confidence is the share of transcribed audio whose windows agreed on the language chosen: 1 when every
 * window did, null when nothing was detected (a forced language, an English-only model, no speech).
 */
function transcriptLanguage(input: TranscribeTaskInput, languages: ReadonlyMap<string, number>): Pick<Transcript, 'language' | 'languageConfidence'> {
  if (input.language !== null || !input.model.multilingual) {
    return { language: input.language ?? 'en', languageConfidence: null };
  }
  const ranked = [...languages.entries()].sort((a, b) => b[1] - a[1]);
  const total = ranked.reduce((sum, [, samples]) => sum + samples, 0);
  const best = ranked[0];
  if (!best || total === 0) {
    return { language: 'en', languageConfidence: null };
  }
  return { language: best[0], languageConfidence: Math.round((best[1] / total) * 1000) / 1000 };
}
