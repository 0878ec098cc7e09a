/**
 * @module transcription/segmentation
 * From what the engine decoded for one window (tokens with times relative to the window) to transcript
 * segments on the audio's timeline: tokens grouped into words, loops and captions removed, word starts moved to
 * the VAD's onsets, and the words split into segments at pauses. Pure functions, tested without a model.
 */
import { collapseLoops, isOnlyCaption } from './hallucination-guard.ts';
import type { TranscriptWord } from '../transcripts/transcript.ts';

/** What the engine returns for one decoded window; times are seconds from the window's start. */
export interface DecodedWindow {
  text: string;
  lang: string;
  tokens: string[];
  timestamps: number[];
  durations: number[];
}

/** Speech found by the VAD, in seconds from the start of the audio. */
export interface SpeechInterval {
  start: number;
  end: number;
}

export interface DecodedWord {
  word: string;
  start: number | null;
  end: number | null;
}

/** A segment before it is numbered in the transcript. */
export interface SegmentPiece {
  start: number;
  end: number;
  text: string;
  words: TranscriptWord[];
}

/**
 * Groups tokens into words on the audio's timeline, clamped to the window's end: a token that starts with a
 * space starts a new word; others extend the last one.
 */
export function wordsOf(result: Pick<DecodedWindow, 'tokens' | 'timestamps' | 'durations'>, offsetSeconds: number, endSeconds: number): DecodedWord[] {
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

/** The words that have times, made monotonic. */
export function timedWords(words: readonly DecodedWord[]): TranscriptWord[] {
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

/**
 * Corrects word starts that the aligner puts where the VAD heard no speech. The aligner dates a window's first
 * token at the window's start (its padding), and a word after a pause at the end of the word before it; the
 * VAD's onset is the better time in both cases.
 */
export function snapToSpeech(words: TranscriptWord[], windowStart: number, speech: readonly SpeechInterval[]): TranscriptWord[] {
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
export function splitAtPauses(words: readonly TranscriptWord[]): SegmentPiece[] {
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

/**
 * The segments of one decoded window spanning [start, end) seconds of the audio. `spoken` says whether the
 * window gave text at all (what the language vote counts). Without usable word times the window is one segment.
 */
export function windowSegments(
  result: DecodedWindow,
  window: { start: number; end: number; speech: readonly SpeechInterval[]; keepWords: boolean },
): { spoken: boolean; segments: { start: number; end: number; text: string; words: TranscriptWord[] | null }[] } {
  const { start, end, speech } = window;
  const decoded = wordsOf(result, start, end);
  const kept = collapseLoops(decoded);
  const text = kept.length === decoded.length ? result.text.trim() : kept.map((word) => word.word).join(' ');
  if (text.length === 0 || isOnlyCaption(text)) {
    return { spoken: false, segments: [] };
  }
  const timed = snapToSpeech(timedWords(kept), start, speech);
  const pieces = timed.length === kept.length && timed.length > 0 ? splitAtPauses(timed) : [{ start, end, text, words: [] }];
  const segments = pieces
    .filter((piece) => !isOnlyCaption(piece.text))
    .map((piece) => ({ ...piece, words: window.keepWords && timed.length > 0 ? piece.words : null }));
  return { spoken: true, segments };
}
