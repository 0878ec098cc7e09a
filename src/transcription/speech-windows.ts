/**
 * @module transcription/speech-windows
 * Which stretches of the audio the engine decodes. Audio is streamed through a voice activity detector, and
 * windows of real audio (gaps included, so the engine hears natural context) are formed that span consecutive
 * speech up to the engine's limit, cutting only in silence. Without a detector, fixed windows. Memory stays
 * flat however long the audio is. Pure logic behind a small detector interface, tested on synthetic decisions.
 */
import { SAMPLE_RATE } from '../audio/pcm.ts';
import type { SpeechInterval } from './segmentation.ts';

/** The engine decodes at most 29.5 s at once and silently drops the rest; stay below. */
export const MAX_DECODE_SECONDS = 28;

/** A voice activity detector fed samples in order, queuing the speech segments it has closed. */
export interface VoiceDetector {
  acceptWaveform(samples: Float32Array): void;
  isEmpty(): boolean;
  /** The oldest queued speech segment: the absolute index of its first sample, and its samples (a copy). */
  front(): { start: number; samples: Float32Array };
  pop(): void;
  /** Closes the speech segment in progress at the end of the audio. */
  flush(): void;
}

/** Decodes `samples`, which start at absolute sample `startSample`; `speech` is what the detector heard in it. */
export type DecodeSpan = (startSample: number, samples: Float32Array, speech: readonly SpeechInterval[]) => Promise<void>;

/** Cuts a speech span longer than the engine's window into near-equal parts. */
export function engineWindows(samples: Float32Array): Float32Array[] {
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
export class SampleHistory {
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
 * Streams the audio through the detector and decodes windows that span consecutive speech up to the engine's
 * limit, cutting only in silence. `onSilence` hears how far the audio is done whenever nothing waits to be
 * decoded; `onLastDecode`, that all the audio is read and the last decode has started.
 */
export async function decodeSpeechWindows(
  vad: VoiceDetector,
  chunks: AsyncIterable<Float32Array>,
  decodeSpan: DecodeSpan,
  onSilence: (doneSeconds: number) => void,
  onLastDecode: () => void = () => {},
): Promise<void> {
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
      const speech = vad.front();
      vad.pop();
      await onSpeech(speech.start, speech.samples);
    }
  };
  for await (const chunk of chunks) {
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

/** Without a detector, fixed windows: words at the cuts may suffer, but nothing is dropped. */
export async function decodeFixedWindows(chunks: AsyncIterable<Float32Array>, decodeSpan: DecodeSpan, onLastDecode: () => void = () => {}): Promise<void> {
  const audio = new SampleHistory();
  let decodedUntil = 0;
  const maxSamples = MAX_DECODE_SECONDS * SAMPLE_RATE;
  for await (const chunk of chunks) {
    audio.push(chunk);
    if (audio.end - decodedUntil >= maxSamples) {
      await decodeSpan(decodedUntil, audio.slice(decodedUntil, decodedUntil + maxSamples), []);
      decodedUntil += maxSamples;
      audio.forgetBefore(decodedUntil);
    }
  }
  onLastDecode();
  await decodeSpan(decodedUntil, audio.slice(decodedUntil, audio.end), []);
}
