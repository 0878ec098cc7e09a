/**
 * @module transcripts/transcript
 * The canonical transcript: what the engine produces, what is stored once per job, and what every format is
 * rendered from.
 */
export interface TranscriptWord {
  word: string;
  start: number;
  end: number;
}

export interface TranscriptSegment {
  id: number;
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  text: string;
  /** Null when the model gives no word timestamps. */
  words: TranscriptWord[] | null;
}

export interface Transcript {
  language: string;
  /**
   * Share (0 to 1) of the transcribed audio whose windows the engine detected as `language`; null when the
   * language was not detected (asked for, or an English-only model). Absent in transcripts stored before it.
   */
  languageConfidence?: number | null;
  durationSeconds: number;
  segments: TranscriptSegment[];
}
