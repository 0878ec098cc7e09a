/**
 * @module transcription/language-vote
 * The language of a transcript. The engine detects a language per window and gives no probability, so each
 * window that gave text votes with its length in samples, and the confidence is the share of transcribed audio
 * whose windows agreed on the language chosen: 1 when every window did, null when nothing was detected (a
 * forced language, an English-only model, no speech).
 */
import type { Transcript } from '../transcripts/transcript.ts';

export class LanguageVote {
  /** Samples of decoded windows that gave text, per language the engine reported for them. */
  private readonly samples = new Map<string, number>();

  add(language: string, samples: number): void {
    this.samples.set(language, (this.samples.get(language) ?? 0) + samples);
  }

  /** The transcript's language: the one asked for, else English for an English-only model, else the vote's winner. */
  outcome(request: { language: string | null; multilingual: boolean }): Pick<Transcript, 'language' | 'languageConfidence'> {
    if (request.language !== null || !request.multilingual) {
      return { language: request.language ?? 'en', languageConfidence: null };
    }
    const ranked = [...this.samples.entries()].sort((a, b) => b[1] - a[1]);
    const total = ranked.reduce((sum, [, samples]) => sum + samples, 0);
    const best = ranked[0];
    if (!best || total === 0) {
      return { language: 'en', languageConfidence: null };
    }
    return { language: best[0], languageConfidence: Math.round((best[1] / total) * 1000) / 1000 };
  }
}
