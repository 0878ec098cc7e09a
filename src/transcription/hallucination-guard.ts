/**
 * @module transcription/hallucination-guard
 * Whisper has no "no speech" gate in sherpa-onnx (no log probabilities, no suppression), so what it invents on
 * music or a lone short word is removed here from the decoded words: sound-event captions such as
 * "(upbeat music)" or "[Music]", and decoding loops such as "1, 1, 1, 1, 1" that repeat one phrase until the
 * token budget runs out. Pure functions, shared by the task and its tests.
 */

export interface GuardedWord {
  word: string;
}

/** Captions Whisper writes for non-speech sound: bracketed spans and music signs. */
const CAPTION = /[([{][^)\]}]*[)\]}]|[♪♫🎵🎶]+|\*[^*]*\*/gu;

/** True when the text holds nothing but sound captions and punctuation. */
export function isOnlyCaption(text: string): boolean {
  return !/[\p{L}\p{N}]/u.test(text.replace(CAPTION, ''));
}

const comparable = (word: string): string => word.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '');

/** A loop is an n-gram repeated at least this many times in a row (real speech repeats a word three times at most). */
const LOOP_REPEATS = 5;
/** Fewer repeats are a loop too when they fill most of the window ("1, 1, 1", "the day of the day, the day..."). */
const DOMINANT_LOOP_REPEATS = 3;
const DOMINANT_LOOP_SHARE = 0.6;
const MAX_LOOP_NGRAM = 10;

function repeatsAt<T extends GuardedWord>(words: readonly T[], start: number, size: number): number {
  let count = 1;
  for (;;) {
    const next = start + count * size;
    if (next + size > words.length) {
      return count;
    }
    for (let k = 0; k < size; k++) {
      if (comparable(words[start + k]?.word ?? '') !== comparable(words[next + k]?.word ?? '')) {
        return count;
      }
    }
    count++;
  }
}

/**
 * Keeps one copy of each decoding loop: an n-gram (up to ten words) repeated five times or more in a row, or
 * three times or more when the repeats make up most of the window's words.
 */
export function collapseLoops<T extends GuardedWord>(words: readonly T[]): T[] {
  const result: T[] = [];
  let index = 0;
  while (index < words.length) {
    let skipped = false;
    for (let size = 1; size <= MAX_LOOP_NGRAM && index + size <= words.length; size++) {
      const count = repeatsAt(words, index, size);
      const dominant = count >= DOMINANT_LOOP_REPEATS && count * size >= DOMINANT_LOOP_SHARE * words.length;
      if ((count >= LOOP_REPEATS || dominant) && comparable(words[index]?.word ?? '').length > 0) {
        result.push(...words.slice(index, index + size));
        index += count * size;
        skipped = true;
        break;
      }
    }
    if (!skipped) {
      const word = words[index];
      if (word) {
        result.push(word);
      }
      index++;
    }
  }
  return result;
}
