import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { LanguageVote } from '../src/transcription/language-vote.ts';

describe('the language vote', () => {
  test('the language heard in most of the audio wins, with the share of audio that agreed as confidence', () => {
    const vote = new LanguageVote();
    vote.add('fr', 300);
    vote.add('en', 100);
    vote.add('fr', 200);
    vote.add('es', 100);
    assert.deepEqual(vote.outcome({ language: null, multilingual: true }), { language: 'fr', languageConfidence: 0.714 });
  });

  test('a forced language or an English-only model is not a detection', () => {
    const vote = new LanguageVote();
    vote.add('fr', 300);
    assert.deepEqual(vote.outcome({ language: 'de', multilingual: true }), { language: 'de', languageConfidence: null });
    assert.deepEqual(vote.outcome({ language: null, multilingual: false }), { language: 'en', languageConfidence: null });
  });

  test('no speech detects nothing', () => {
    assert.deepEqual(new LanguageVote().outcome({ language: null, multilingual: true }), { language: 'en', languageConfidence: null });
  });
});
