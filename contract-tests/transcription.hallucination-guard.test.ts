import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { collapseLoops, isOnlyCaption } from '../src/transcription/hallucination-guard.ts';

const asWords = (text: string) => text.split(' ').map((word) => ({ word }));
const collapsed = (text: string) => collapseLoops(asWords(text)).map((word) => word.word).join(' ');

describe('the hallucination guard', () => {
  test('a decoding loop is kept once, whether it fills the window or runs on inside it', () => {
    assert.equal(collapsed('1, 1, 1, 1, 1'), '1,');
    assert.equal(collapsed('Thank you. Thank you. Thank you.'), 'Thank you.');
    assert.equal(collapsed('and then I said so so so so so so so so what'), 'and then I said so what');
    assert.equal(collapsed('we went to the shop, to the shop, to the shop, to the shop, to the shop, to the shop, and home'), 'we went to the shop, and home');
  });

  test('real repetition in speech is left alone', () => {
    for (const text of [
      "here's some more words words words words um and that should be all thanks",
      'no, no, I said it was the first, the first of many',
      'ask not what your country can do for you, ask what you can do for your country',
    ]) {
      assert.equal(collapsed(text), text);
    }
  });

  test('captions of sounds are recognised as holding no speech', () => {
    for (const text of ['(upbeat music)', '[Music]', '♪ ♪', '[BLANK_AUDIO]', '*sighs*', '(applause) [laughter]']) {
      assert.equal(isOnlyCaption(text), true, text);
    }
    for (const text of ['[Music] and then she left', 'one (1) thing', 'hello']) {
      assert.equal(isOnlyCaption(text), false, text);
    }
  });
});
