import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { DecodedWindow } from '../src/transcription/segmentation.ts';
import { snapToSpeech, splitAtPauses, timedWords, windowSegments, wordsOf } from '../src/transcription/segmentation.ts';
import type { TranscriptWord } from '../src/transcripts/transcript.ts';

/** A decoded window from [token, start, duration] triples, times relative to the window. */
function decoded(tokens: [string, number, number][], lang = 'en'): DecodedWindow {
  return {
    text: tokens.map(([token]) => token).join(''),
    lang,
    tokens: tokens.map(([token]) => token),
    timestamps: tokens.map(([, start]) => start),
    durations: tokens.map(([, , duration]) => duration),
  };
}

const words = (...spec: [string, number, number][]): TranscriptWord[] => spec.map(([word, start, end]) => ({ word, start, end }));

describe('word grouping', () => {
  test('tokens join into words at leading spaces, on the audio timeline, clamped to the window', () => {
    const result = decoded([
      [' Hel', 0.2, 0.1],
      ['lo', 0.3, 0.2],
      [',', 0.5, 0.05],
      [' world', 1.0, 0.4],
      [' again', 2.9, 0.5],
    ]);
    assert.deepEqual(wordsOf(result, 100, 103), [
      { word: 'Hello,', start: 100.2, end: 100.55 },
      { word: 'world', start: 101, end: 101.4 },
      { word: 'again', start: 102.9, end: 103 },
    ]);
  });

  test('words without times are dropped from the timed words, and times never run backwards', () => {
    const timed = timedWords([
      { word: 'a', start: 1, end: 1.6 },
      { word: 'b', start: null, end: null },
      { word: 'c', start: 0.9, end: 0.95 },
      { word: 'd', start: 2, end: 2.5 },
    ]);
    assert.deepEqual(timed, words(['a', 1, 1], ['c', 1, 1], ['d', 2, 2.5]));
  });

  test("word starts move to the detector's onsets: at the window's padding and after a pause", () => {
    const snapped = snapToSpeech(words(['so', 10, 10.9], ['then', 12.1, 13.2], ['we', 13.3, 13.5]), 10, [
      { start: 10.5, end: 12 },
      { start: 12.8, end: 14 },
    ]);
    assert.deepEqual(snapped, words(['so', 10.5, 10.9], ['then', 12.8, 13.2], ['we', 13.3, 13.5]));
  });
});

describe('pause splitting', () => {
  test('a pause of 0.8 s or more starts a new segment; a shorter one does not', () => {
    const pieces = splitAtPauses(words(['one', 0, 0.4], ['two', 0.9, 1.2], ['three', 2.0, 2.5]));
    assert.deepEqual(
      pieces.map((piece) => [piece.start, piece.end, piece.text]),
      [
        [0, 1.2, 'one two'],
        [2.0, 2.5, 'three'],
      ],
    );
  });

  test('a sentence end splits only a segment already 4 s long', () => {
    const short = splitAtPauses(words(['Hi.', 0, 0.5], ['Yes', 0.6, 1]));
    assert.equal(short.length, 1);
    const long = splitAtPauses(words(['We', 0, 0.5], ['talked', 0.6, 2], ['long."', 2.1, 4.2], ['Then', 4.3, 5]));
    assert.deepEqual(
      long.map((piece) => piece.text),
      ['We talked long."', 'Then'],
    );
  });
});

describe('the segments of one window', () => {
  const window = { start: 20, end: 30, speech: [{ start: 20.5, end: 29 }], keepWords: true };

  test('timed words become segments split at pauses, with their words when asked for', () => {
    const result = decoded([
      [' Good', 0.6, 0.3],
      [' morning.', 0.9, 0.5],
      [' How', 3.0, 0.2],
      [' are', 3.2, 0.2],
      [' you?', 3.4, 0.3],
    ]);
    const { spoken, segments } = windowSegments(result, window);
    assert.equal(spoken, true);
    assert.deepEqual(
      segments.map((segment) => [segment.start, segment.end, segment.text, segment.words?.length]),
      [
        [20.6, 21.4, 'Good morning.', 2],
        [23, 23.7, 'How are you?', 3],
      ],
    );
    assert.deepEqual(
      windowSegments(result, { ...window, keepWords: false }).segments.map((segment) => segment.words),
      [null, null],
    );
  });

  test('a decoding loop is collapsed and the text rebuilt from the words kept', () => {
    const loop = decoded([[' Thanks', 1, 0.2], ...Array.from({ length: 6 }, (_, i): [string, number, number] => [' 1,', 1.5 + i * 0.3, 0.2])]);
    const { segments } = windowSegments(loop, window);
    assert.deepEqual(
      segments.map((segment) => segment.text),
      ['Thanks 1,'],
    );
  });

  test('a window of captions only gives no segment and does not count as speech', () => {
    assert.deepEqual(windowSegments(decoded([[' (upbeat', 0, 1], [' music)', 1, 1]]), window), { spoken: false, segments: [] });
    assert.deepEqual(windowSegments(decoded([]), window), { spoken: false, segments: [] });
  });

  test('without word times the window is one segment of its text over its whole span', () => {
    const result = { text: ' Hello there ', lang: 'en', tokens: [' Hello', ' there'], timestamps: [], durations: [] };
    assert.deepEqual(windowSegments(result, window), { spoken: true, segments: [{ start: 20, end: 30, text: 'Hello there', words: null }] });
  });
});
