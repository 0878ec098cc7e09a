/**
 * The conformance matrix of the README (response_format x timestamp_granularities x stream x endpoint), one named
 * test per cell, each through OpenAI's official SDK. Cells are named `<endpoint> <format> <granularities>
 * stream=<bool>`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import OpenAI, { toFile } from 'openai';

import { FIXTURES, MULTILINGUAL_MODEL, requireModel, startServer, words } from './support/harness.ts';
import type { TestServer } from './support/harness.ts';
import { openAIClient } from './support/openai-client.ts';
import type { CheckedOpenAI } from './support/openai-client.ts';

const CLIP = 'ldc93s1.ogg';
const FORMATS = ['json', 'text', 'srt', 'vtt', 'verbose_json'] as const;
const GRANULARITIES = [[], ['segment'], ['word'], ['word', 'segment']] as const;
type Format = (typeof FORMATS)[number];
type Granularities = (typeof GRANULARITIES)[number];

type Outcome = { refused: { code: string; param: string } } | { answer: 'json' | 'text' | 'srt' | 'vtt' | 'verbose' | 'events' };

/** What OpenAI's documentation (and Cesar) gives for a transcription cell. */
function expected(format: Format, granularities: Granularities, stream: boolean): Outcome {
  if ((granularities as readonly string[]).includes('word') && format !== 'verbose_json') {
    return { refused: { code: 'invalid_request', param: 'timestamp_granularities' } };
  }
  if (stream) {
    return format === 'json' || format === 'text' ? { answer: 'events' } : { refused: { code: 'invalid_request', param: 'stream' } };
  }
  return { answer: format === 'verbose_json' ? 'verbose' : format };
}

const cellName = (endpoint: string, format: Format, granularities: readonly string[], stream: boolean): string =>
  `${endpoint} ${format} ${granularities.length === 0 ? '-' : granularities.join('+')} stream=${stream}`;

async function outcome(call: () => Promise<unknown>): Promise<{ error: InstanceType<typeof OpenAI.APIError> } | { value: unknown }> {
  try {
    const value = await call();
    if (value && typeof value === 'object' && Symbol.asyncIterator in value) {
      const events: unknown[] = [];
      for await (const event of value as AsyncIterable<unknown>) {
        events.push(event);
      }
      return { value: events };
    }
    return { value };
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, String(error));
    return { error: error as InstanceType<typeof OpenAI.APIError> };
  }
}

function assertOutcome(got: Awaited<ReturnType<typeof outcome>>, want: Outcome, granularities: readonly string[]): void {
  if ('refused' in want) {
    assert.ok('error' in got, 'expected a refusal');
    assert.equal(got.error.status, 400);
    assert.equal(got.error.code, want.refused.code);
    assert.equal(got.error.param, want.refused.param);
    return;
  }
  assert.ok('value' in got, 'error' in got ? got.error.message : '');
  const { value } = got;
  switch (want.answer) {
    case 'json':
      assert.ok(words((value as { text: string }).text).length > 3);
      break;
    case 'text':
      assert.equal(typeof value, 'string');
      assert.ok(words(value as string).length > 3);
      break;
    case 'srt':
      assert.match(value as string, /^1\n00:00:\d\d,\d{3} --> /);
      break;
    case 'vtt':
      assert.match(value as string, /^WEBVTT\n\n00:00:/);
      break;
    case 'verbose': {
      const verbose = value as { segments?: unknown[]; words?: unknown[]; language: string };
      assert.equal(verbose.language, 'english');
      const wantsWords = granularities.includes('word');
      const wantsSegments = granularities.length === 0 || granularities.includes('segment');
      assert.equal(Array.isArray(verbose.words) && verbose.words.length > 0, wantsWords);
      assert.equal(Array.isArray(verbose.segments) && verbose.segments.length > 0, wantsSegments);
      break;
    }
    case 'events': {
      const events = value as { type: string; delta?: string; text?: string }[];
      const done = events.filter((event) => event.type === 'transcript.text.done');
      assert.equal(done.length, 1);
      assert.equal(events.at(-1)?.type, 'transcript.text.done');
      assert.equal(events.filter((event) => event.type === 'transcript.text.delta').map((event) => event.delta).join(''), done[0]?.text);
      break;
    }
  }
}

describe('OpenAI conformance matrix', () => {
  let server: TestServer;
  let openai: CheckedOpenAI;
  let clip: Buffer;
  before(async () => {
    server = await startServer({ CESAR_DEFAULT_MODEL: MULTILINGUAL_MODEL });
    openai = openAIClient(server.client.baseUrl);
    clip = await readFile(path.join(FIXTURES, CLIP));
  });
  after(async () => {
    try {
      await openai.checked();
    } finally {
      await server.close();
    }
  });

  for (const stream of [false, true]) {
    for (const format of FORMATS) {
      for (const granularities of GRANULARITIES) {
        test(cellName('transcriptions', format, granularities, stream), async (t) => {
          if (!requireModel(t)) {
            return;
          }
          const got = await outcome(async () =>
            openai.client.audio.transcriptions.create({
              file: await toFile(clip, CLIP),
              model: 'whisper-1',
              response_format: format,
              ...(granularities.length > 0 ? { timestamp_granularities: [...granularities] } : {}),
              ...(stream ? { stream: true } : {}),
            } as unknown as OpenAI.Audio.TranscriptionCreateParamsNonStreaming),
          );
          assertOutcome(got, expected(format, granularities, stream), granularities);
          await openai.checked();
        });
      }
    }
  }

  for (const format of FORMATS) {
    test(cellName('translations', format, [], false), async (t) => {
      if (!requireModel(t)) {
        return;
      }
      const got = await outcome(async () => openai.client.audio.translations.create({ file: await toFile(clip, CLIP), model: 'whisper-1', response_format: format }));
      assertOutcome(got, { answer: format === 'verbose_json' ? 'verbose' : format }, []);
      await openai.checked();
    });
  }

  // OpenAI's translations take neither timestamp granularities nor stream: an unknown field, as OpenAI answers.
  for (const extra of [{ timestamp_granularities: ['segment'] }, { timestamp_granularities: ['word'] }, { stream: true }]) {
    const name = 'stream' in extra ? cellName('translations', 'json', [], true) : cellName('translations', 'verbose_json', extra.timestamp_granularities, false);
    test(name, async (t) => {
      if (!requireModel(t)) {
        return;
      }
      const got = await outcome(async () =>
        openai.client.audio.translations.create({ file: await toFile(clip, CLIP), model: 'whisper-1', response_format: 'stream' in extra ? 'json' : 'verbose_json', ...extra }),
      );
      assert.ok('error' in got);
      assert.equal(got.error.status, 400);
      assert.equal(got.error.code, 'unknown_field');
      await openai.checked();
    });
  }
});
