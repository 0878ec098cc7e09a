import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SAMPLE_RATE } from '../src/audio/pcm.ts';
import type { SpeechInterval } from '../src/transcription/segmentation.ts';
import { decodeFixedWindows, decodeSpeechWindows, engineWindows, MAX_DECODE_SECONDS, SampleHistory } from '../src/transcription/speech-windows.ts';
import type { VoiceDetector } from '../src/transcription/speech-windows.ts';

// Every synthetic sample holds its own absolute index (exact in float32 below 2^24 samples, about 17 minutes),
// so a test can tell from the samples alone where in the audio a window came from.
const SCALE = 2 ** 24;
const sampleAt = (index: number): number => index / SCALE;
const seconds = (s: number): number => Math.round(s * SAMPLE_RATE);
const MAX_WINDOW = MAX_DECODE_SECONDS * SAMPLE_RATE;

/** The audio in chunks, each after a turn of the event loop, as reading a file gives them. */
async function* syntheticAudio(totalSamples: number, chunkSamples = SAMPLE_RATE): AsyncGenerator<Float32Array> {
  for (let start = 0; start < totalSamples; start += chunkSamples) {
    await new Promise(setImmediate);
    const chunk = new Float32Array(Math.min(chunkSamples, totalSamples - start));
    chunk.forEach((_, i) => (chunk[i] = sampleAt(start + i)));
    yield chunk;
  }
}

/**
 * A detector that "hears" given speech intervals (in samples): each is queued once the audio fed has gone
 * `delaySamples` past its end, like a VAD waiting for enough silence; `flush` queues what is still open.
 */
function syntheticDetector(speech: readonly { start: number; end: number }[], delaySamples = seconds(0.5)): VoiceDetector & { fed: number } {
  const queue: { start: number; samples: Float32Array }[] = [];
  let next = 0;
  const detector = {
    fed: 0,
    acceptWaveform(samples: Float32Array) {
      detector.fed += samples.length;
      while (next < speech.length && (speech[next]?.end ?? 0) + delaySamples <= detector.fed) {
        close();
      }
    },
    isEmpty: () => queue.length === 0,
    front() {
      const first = queue[0];
      assert.ok(first, 'front() called on an empty detector');
      return first;
    },
    pop: () => void queue.shift(),
    flush() {
      while (next < speech.length && (speech[next]?.start ?? Infinity) < detector.fed) {
        close();
      }
    },
  };
  const close = (): void => {
    const interval = speech[next++];
    assert.ok(interval);
    const end = Math.min(interval.end, detector.fed);
    const samples = new Float32Array(end - interval.start);
    samples.forEach((_, i) => (samples[i] = sampleAt(interval.start + i)));
    queue.push({ start: interval.start, samples });
  };
  return detector;
}

interface Span {
  startSample: number;
  length: number;
  speech: readonly SpeechInterval[];
}

/** A decoder that records what it is given, checks that the samples are the audio's own, and never overlaps. */
function recordingDecoder(decodeMs = 0): { spans: Span[]; decode: (startSample: number, samples: Float32Array, speech: readonly SpeechInterval[]) => Promise<void> } {
  const spans: Span[] = [];
  let busy = false;
  return {
    spans,
    async decode(startSample, samples, speech) {
      assert.equal(busy, false, 'two windows were decoded at once');
      busy = true;
      for (let i = 0; i < samples.length; i += 997) {
        assert.equal(samples[i], sampleAt(startSample + i), `sample ${i} of the window starting at ${startSample} is not the audio's sample ${startSample + i}`);
      }
      assert.equal(samples.at(-1), sampleAt(startSample + samples.length - 1));
      spans.push({ startSample, length: samples.length, speech: [...speech] });
      await new Promise((resolve) => setTimeout(resolve, decodeMs));
      busy = false;
    },
  };
}

/** Talk of `talk` seconds then `pause` seconds of silence, from `from` to `to` seconds. */
function turns(from: number, to: number, talk: number, pause: number): { start: number; end: number }[] {
  const result: { start: number; end: number }[] = [];
  for (let t = from; t + talk <= to; t += talk + pause) {
    result.push({ start: seconds(t), end: seconds(t + talk) });
  }
  return result;
}

function assertCutsOnlyInPauses(spans: readonly Span[], speech: readonly { start: number; end: number }[]): void {
  for (const interval of speech) {
    const holding = spans.filter((span) => span.startSample <= interval.start && interval.end <= span.startSample + span.length);
    assert.equal(holding.length, 1, `speech ${interval.start / SAMPLE_RATE}-${interval.end / SAMPLE_RATE} s is not inside exactly one window`);
  }
  for (let i = 1; i < spans.length; i++) {
    const previous = spans[i - 1];
    const span = spans[i];
    assert.ok(previous && span);
    assert.ok(previous.startSample + previous.length <= span.startSample, 'windows overlap or come out of order');
  }
}

describe('speech windows from voice activity decisions', () => {
  test('a conversation is cut only in its pauses, into windows of at most 28 s, with absolute times kept', async () => {
    const speech = [...turns(2, 95, 6.5, 0.9), ...turns(120, 200, 19.5, 1.2)];
    const total = seconds(210);
    const decoder = recordingDecoder();
    await decodeSpeechWindows(syntheticDetector(speech), syntheticAudio(total), decoder.decode, () => {});

    assert.ok(decoder.spans.length > 5, `only ${decoder.spans.length} windows`);
    assertCutsOnlyInPauses(decoder.spans, speech);
    for (const span of decoder.spans) {
      assert.ok(span.length <= MAX_WINDOW, `a window of ${span.length / SAMPLE_RATE} s`);
    }
    // The speech each window reports is what the detector heard in it, in seconds on the audio's timeline.
    const reported = decoder.spans.flatMap((span) => span.speech);
    assert.deepEqual(
      reported,
      speech.map((interval) => ({ start: interval.start / SAMPLE_RATE, end: interval.end / SAMPLE_RATE })),
    );
    for (const span of decoder.spans) {
      for (const interval of span.speech) {
        assert.ok(interval.start * SAMPLE_RATE >= span.startSample && interval.end * SAMPLE_RATE <= span.startSample + span.length);
      }
    }
  });

  test('long silence is skipped, and reported as progress while nothing waits to be decoded', async () => {
    const speech = [{ start: seconds(1), end: seconds(4) }, { start: seconds(300), end: seconds(303) }];
    const decoder = recordingDecoder();
    const progress: number[] = [];
    await decodeSpeechWindows(syntheticDetector(speech), syntheticAudio(seconds(320)), decoder.decode, (done) => progress.push(done));

    assert.equal(decoder.spans.length, 2);
    const decodedSamples = decoder.spans.reduce((sum, span) => sum + span.length, 0);
    assert.ok(decodedSamples < seconds(10), `${decodedSamples / SAMPLE_RATE} s decoded of 6 s of speech`);
    assert.ok(progress.length > 250, `${progress.length} silence reports`);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
    // Through the silence up to the last speech; the audio after it waits for that window's decode.
    assert.ok((progress.at(-1) ?? 0) >= 295 && (progress.at(-1) ?? 0) < 320, `last report at ${progress.at(-1)} s`);
  });

  test('speech the detector reports after the audio it came from was forgotten is decoded from its own copy', async () => {
    // A detector that takes 150 s to decide (longer than the audio kept for windows).
    const speech = [{ start: seconds(10), end: seconds(25) }];
    const decoder = recordingDecoder();
    await decodeSpeechWindows(syntheticDetector(speech, seconds(150)), syntheticAudio(seconds(200)), decoder.decode, () => {});
    assert.deepEqual(
      decoder.spans.map((span) => [span.startSample, span.length]),
      [[seconds(10), seconds(15)]],
    );
  });

  test('speech still open at the end of the audio is flushed and decoded', async () => {
    const speech = [{ start: seconds(3), end: seconds(30) }];
    const decoder = recordingDecoder();
    await decodeSpeechWindows(syntheticDetector(speech), syntheticAudio(seconds(12)), decoder.decode, () => {});
    assert.equal(decoder.spans.length, 1);
    const [span] = decoder.spans;
    assert.ok(span);
    assert.ok(span.startSample <= seconds(3) && span.startSample + span.length === seconds(12));
  });

  test('decoding overlaps reading but never another decode, and a failed decode fails the whole run', async () => {
    const speech = turns(1, 60, 5, 2);
    const slow = recordingDecoder(5);
    await decodeSpeechWindows(syntheticDetector(speech), syntheticAudio(seconds(62)), slow.decode, () => {});
    assertCutsOnlyInPauses(slow.spans, speech);

    let calls = 0;
    const failing = async (): Promise<void> => {
      calls++;
      await Promise.resolve();
      throw new Error('engine failed');
    };
    await assert.rejects(decodeSpeechWindows(syntheticDetector(speech), syntheticAudio(seconds(62)), failing, () => {}), /engine failed/);
    assert.equal(calls, 1, 'decoding went on after a failure');
  });
});

describe('fixed windows without a detector', () => {
  test('the audio is cut every 28 s, nothing dropped, times absolute', async () => {
    const total = seconds(70.3);
    const decoder = recordingDecoder();
    await decodeFixedWindows(syntheticAudio(total, 7000), decoder.decode);
    assert.deepEqual(
      decoder.spans.map((span) => [span.startSample, span.length]),
      [
        [0, MAX_WINDOW],
        [MAX_WINDOW, MAX_WINDOW],
        [2 * MAX_WINDOW, total - 2 * MAX_WINDOW],
      ],
    );
  });
});

describe('engine windows', () => {
  test('a span longer than the engine takes is cut into near-equal contiguous parts of at most 28 s', () => {
    const span = new Float32Array(seconds(60));
    const parts = engineWindows(span);
    assert.equal(parts.length, 3);
    assert.equal(parts.reduce((sum, part) => sum + part.length, 0), span.length);
    for (const part of parts) {
      assert.ok(part.length <= MAX_WINDOW && part.length >= seconds(19.9));
    }
    assert.deepEqual(engineWindows(new Float32Array(MAX_WINDOW)).map((part) => part.length), [MAX_WINDOW]);
  });

  test('the sample history serves slices by absolute index and clips what it forgot', () => {
    const history = new SampleHistory();
    for (let start = 0; start < 50; start += 10) {
      history.push(Float32Array.from({ length: 10 }, (_, i) => start + i));
    }
    assert.deepEqual([...history.slice(8, 13)], [8, 9, 10, 11, 12]);
    history.forgetBefore(25);
    assert.equal(history.start, 20);
    assert.deepEqual([...history.slice(15, 23)], [20, 21, 22]);
    assert.deepEqual([...history.slice(48, 60)], [48, 49]);
  });
});
