import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { runCesar } from './support/cli.ts';
import { FIXTURES, modelsDir, requireModel, tempDir, TEST_MODEL, words } from './support/harness.ts';

const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';

/** The words of a subtitle file: every line that is not a header, a cue number or a timing line. */
function subtitleWords(text: string): string[] {
  return words(text.split('\n').filter((line) => !/^\d+$|-->|^WEBVTT/.test(line.trim())).join(' '));
}

describe('cesar transcribe', () => {
  test('writes the spoken words in every format, next to nothing else, and exits 0', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(
      ['transcribe', path.join(FIXTURES, 'jfk.ogg'), '--model', TEST_MODEL, '--format', 'txt,json,verbose_json,srt,vtt', '--output', 'out'],
      { cwd, env: { CESAR_MODELS_DIR: modelsDir() ?? '' } },
    );
    assert.equal(result.code, 0, result.stderr);
    const out = path.join(cwd, 'out');
    assert.deepEqual((await readdir(out)).sort(), ['jfk.json', 'jfk.srt', 'jfk.txt', 'jfk.verbose.json', 'jfk.vtt']);
    const expected = JFK.split(' ');
    assert.deepEqual(words(await readFile(path.join(out, 'jfk.txt'), 'utf8')), expected);
    const json = JSON.parse(await readFile(path.join(out, 'jfk.json'), 'utf8')) as { text: string; model: string; segments: { text: string }[] };
    assert.equal(json.model, TEST_MODEL);
    assert.deepEqual(words(json.text), expected);
    assert.deepEqual(words(json.segments.map((segment) => segment.text).join(' ')), expected);
    const verbose = JSON.parse(await readFile(path.join(out, 'jfk.verbose.json'), 'utf8')) as { segments: { words: { word: string }[] }[] };
    assert.deepEqual(words(verbose.segments.flatMap((segment) => segment.words.map((word) => word.word)).join(' ')), expected);
    const srt = await readFile(path.join(out, 'jfk.srt'), 'utf8');
    assert.match(srt, /^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n/);
    assert.deepEqual(subtitleWords(srt), expected);
    const vtt = await readFile(path.join(out, 'jfk.vtt'), 'utf8');
    assert.match(vtt, /^WEBVTT\n\n00:00:\d\d\.\d{3} --> /);
    assert.deepEqual(subtitleWords(vtt), expected);
  });

  test('transcribes to standard output with --output -', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(['transcribe', path.join(FIXTURES, 'jfk.ogg'), '--model', TEST_MODEL, '--output', '-'], {
      cwd,
      env: { CESAR_MODELS_DIR: modelsDir() ?? '' },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(words(result.stdout), JFK.split(' '));
    assert.deepEqual(await readdir(cwd), []);
  });

  test('a file that cannot be decoded exits 1 and is named, while the other files are still written', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(
      ['transcribe', path.join(FIXTURES, 'not-audio.mp3'), path.join(FIXTURES, 'jfk.ogg'), 'missing.wav', '--model', TEST_MODEL],
      { cwd, env: { CESAR_MODELS_DIR: modelsDir() ?? '' } },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /not-audio\.mp3: failed: undecodable_media/);
    assert.match(result.stderr, /missing\.wav: failed/);
    assert.deepEqual(await readdir(cwd), ['jfk.txt']);
    assert.deepEqual(words(await readFile(path.join(cwd, 'jfk.txt'), 'utf8')), JFK.split(' '));
  });

  test('a model that is not installed exits 3 with the command that installs it', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    await mkdir(path.join(cwd, 'models'));
    const result = await runCesar(['transcribe', path.join(FIXTURES, 'jfk.ogg'), '--model', 'small'], { cwd, env: { CESAR_MODELS_DIR: 'models' } });
    assert.equal(result.code, 3);
    assert.match(result.stderr, /the model small is not installed in .*models \(installed: none\); install it with: npx cesar models download small/);
  });
});

describe('bad arguments', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown option', ['transcribe', '--bogus', 'a.wav'], /Unknown option '--bogus'/],
    ['no file', ['transcribe', '--format', 'srt'], /no FILE given/],
    ['an unknown format', ['transcribe', 'a.wav', '--format', 'txt,docx'], /--format must be one or more of txt, json, verbose_json, srt, vtt, got "docx"/],
    ['an unknown task', ['transcribe', 'a.wav', '--task', 'summarize'], /--task must be transcribe or translate/],
    ['a malformed language', ['transcribe', 'a.wav', '--language', 'English'], /--language must be a language code/],
    ['a port out of range', ['serve', '--port', '70000'], /--port must be a whole number between 0 and 65535/],
    ['a submission without a file', ['submit', '--server', 'http://127.0.0.1:1'], /no FILE or URL given/],
    ['a server that is not a URL', ['submit', 'a.wav', '--server', 'not a url'], /--server is not a URL/],
    ['a download without a name', ['models', 'download'], /download needs a model NAME/],
    ['a model name with a path in it', ['models', 'download', '../etc'], /not a model name/],
  ];
  for (const [what, args, message] of cases) {
    test(`${what} prints the message and the usage, and exits 2`, async (t) => {
      const cwd = await tempDir();
      t.after(() => rm(cwd, { recursive: true, force: true }));
      const result = await runCesar(args, { cwd });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.match(result.stderr, new RegExp(`Usage: cesar ${args[0] ?? ''}`));
      assert.equal(result.stdout, '');
    });
  }

  test('an unknown command or none at all prints the list of commands and exits 2', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    for (const args of [['transcode'], []]) {
      const result = await runCesar(args, { cwd });
      assert.equal(result.code, 2);
      assert.match(result.stderr, /Usage: cesar COMMAND[\s\S]*transcribe FILE\.\.\./);
    }
  });

  test('an invalid setting in the environment names the variable and exits 2', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(['models'], { cwd, env: { CESAR_MAX_WORKERS: 'many' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /invalid configuration: CESAR_MAX_WORKERS: expected a whole number/);
  });

  test('--help documents every option of every command and exits 0', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const expected: Record<string, string[]> = {
      serve: ['--host', '--port', '--workers', '--models-dir', '--data-dir', '--default-model', '--log-format'],
      transcribe: ['--model', '--language', '--task', '--format', '--output', '--models-dir', 'Exit codes'],
      submit: ['--server', '--wait', '--model', '--format', '--output', 'Exit codes'],
      models: ['download NAME', '--base-url', '--sha256', '--force', 'Exit codes'],
    };
    for (const [command, options] of Object.entries(expected)) {
      const result = await runCesar([command, '--help'], { cwd });
      assert.equal(result.code, 0);
      for (const option of options) {
        assert.ok(result.stdout.includes(option), `cesar ${command} --help does not mention ${option}`);
      }
    }
  });
});
