/**
 * OpenAI's official Python SDK (`pip install openai`) against a test server: transcription, translation and
 * streaming, by `examples/python/openai_sdk.py`. CI installs the package into its virtual environment (`.ci/run`).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { cliEnv, REPO_ROOT, requireTool, runCommand } from './support/cli.ts';
import { FIXTURES, MULTILINGUAL_MODEL, requireModel, startServer, words } from './support/harness.ts';

/** A Python with the openai package installed (.ci/run makes a virtual environment); python3 otherwise. */
const PYTHON = process.env.CESAR_TEST_PYTHON ?? 'python3';

interface ScriptOutput {
  transcription: { text: string; language: string; duration: number; segments: number; words: string[] };
  translation: string;
  stream: { deltas: string[]; done: string | null };
}

describe("OpenAI's Python SDK", () => {
  test('transcribes (verbose_json with words), translates French into English and streams, through the base URL alone', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const probe = await runCommand(PYTHON, ['-c', 'import openai']).catch(() => null);
    if (!requireTool(t, `the openai package for ${PYTHON}`, probe?.code === 0, 'pip install openai, and set CESAR_TEST_PYTHON to that Python')) {
      return;
    }
    const server = await startServer({ CESAR_DEFAULT_MODEL: MULTILINGUAL_MODEL });
    t.after(() => server.close());
    const result = await runCommand(
      PYTHON,
      [path.join(REPO_ROOT, 'examples', 'python', 'openai_sdk.py'), server.client.baseUrl, path.join(FIXTURES, 'jfk.ogg'), path.join(FIXTURES, 'fleurs-fr-000.ogg')],
      { env: cliEnv({}) },
    );
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as ScriptOutput;
    const spoken = words(output.transcription.text);
    assert.ok(spoken.includes('country') && spoken.includes('americans'), output.transcription.text);
    assert.equal(output.transcription.language, 'english');
    assert.ok(Math.abs(output.transcription.duration - 11.01) < 0.1);
    assert.ok(output.transcription.segments >= 1);
    assert.deepEqual(words(output.transcription.words.join(' ')), spoken);
    assert.ok(words(output.translation).includes('the'), output.translation);
    assert.ok(output.stream.deltas.length >= 1);
    assert.equal(output.stream.deltas.join(''), output.stream.done);
    assert.deepEqual(words(output.stream.done ?? ''), spoken);
  });
});
