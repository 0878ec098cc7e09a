import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { extractTarBz2, findSystemBzip2 } from '../src/transcription/model-download.ts';
import { runCesar, runCommand } from './support/cli.ts';
import { FIXTURES, modelsDir, requireModel, tempDir, TEST_MODEL, words } from './support/harness.ts';
import { startReleaseMirror } from './support/release-mirror.ts';
import type { ReleaseMirror } from './support/release-mirror.ts';

/** Nothing installed and nothing left over: not the model folder, not a temporary download folder. */
async function assertNothingInstalled(models: string): Promise<void> {
  assert.deepEqual(await readdir(models).catch(() => []), []);
}

describe('cesar models download', () => {
  let mirror: ReleaseMirror | null = null;
  before(async () => {
    const source = modelsDir();
    if (source !== null) {
      mirror = await startReleaseMirror(source);
    }
  });
  after(async () => {
    await mirror?.close();
  });

  const download = async (cwd: string, prefix: string, extra: string[] = []) =>
    runCesar(['models', 'download', TEST_MODEL, '--base-url', `${mirror?.baseUrl}/${prefix}/`, '--models-dir', 'models', ...extra], { cwd });

  test('installs the archive and the VAD model, checked against the checksum, and the model then transcribes', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await download(cwd, 'good', ['--sha256', mirror.archiveSha256]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`installed ${TEST_MODEL} in .*sherpa-onnx-whisper-${TEST_MODEL.replace('.', '\\.')}`));
    assert.deepEqual((await readdir(path.join(cwd, 'models'))).sort(), [`sherpa-onnx-whisper-${TEST_MODEL}`, 'silero_vad.onnx']);

    const listed = await runCesar(['models', '--json', '--models-dir', 'models'], { cwd });
    assert.equal(listed.code, 0, listed.stderr);
    const catalog = JSON.parse(listed.stdout) as { models: { name: string; multilingual: boolean; wordTimestamps: boolean; sizeBytes: number }[]; vad_model: string | null };
    assert.deepEqual(catalog.models.map((model) => [model.name, model.multilingual, model.wordTimestamps]), [[TEST_MODEL, false, true]]);
    assert.ok((catalog.models[0]?.sizeBytes ?? 0) > 1_000_000);
    assert.equal(catalog.vad_model, path.join(cwd, 'models', 'silero_vad.onnx'));
    const table = await runCesar(['models', '--models-dir', 'models'], { cwd });
    assert.match(table.stdout, new RegExp(`${TEST_MODEL.replace('.', '\\.')}\\s+\\d+ MB\\s+English only\\s+word timestamps`));

    const transcribed = await runCesar(['transcribe', path.join(FIXTURES, 'jfk.ogg'), '--model', TEST_MODEL, '--models-dir', 'models', '--output', '-'], { cwd });
    assert.equal(transcribed.code, 0, transcribed.stderr);
    assert.deepEqual(words(transcribed.stdout).slice(0, 4), ['and', 'so', 'my', 'fellow']);

    const again = await download(cwd, 'good');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is already installed \(use --force to replace it\)/);
  });

  test('an interrupted download installs nothing and exits 1', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await download(cwd, 'cut');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the download of .* (broke off|stopped) .*; nothing was installed/);
    await assertNothingInstalled(path.join(cwd, 'models'));
  });

  test('a damaged archive installs nothing and exits 1', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await download(cwd, 'damaged');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /(is not a readable \.tar\.bz2 archive|does not hold a usable model).*; nothing was installed/);
    await assertNothingInstalled(path.join(cwd, 'models'));
  });

  test('an archive whose model files are unreadable installs nothing and exits 1', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await download(cwd, 'fake');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /does not hold a usable model: unreadable encoder/);
    await assertNothingInstalled(path.join(cwd, 'models'));
  });

  test('a checksum that does not match installs nothing and exits 1', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await download(cwd, 'good', ['--sha256', '0'.repeat(64)]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`has SHA-256 ${mirror.archiveSha256}, expected 0{64}; nothing was installed`));
    await assertNothingInstalled(path.join(cwd, 'models'));
  });

  test('a name that is not an official release exits 1 and says so', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(['models', 'download', 'huge-v9', '--base-url', `${mirror.baseUrl}/good/`, '--models-dir', 'models'], { cwd });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /sherpa-onnx-whisper-huge-v9\.tar\.bz2 answered 404.*Is huge-v9 the name of an official release/);
    await assertNothingInstalled(path.join(cwd, 'models'));
  });

  test('offline it fails with exit 3 and says where to put the files by hand', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    // A port nobody listens on: connection refused, as on a machine without network.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const port = typeof address === 'object' && address ? address.port : 9;
    const result = await runCesar(['models', 'download', 'base', '--base-url', `http://127.0.0.1:${port}/asr-models/`, '--models-dir', 'models'], { cwd });
    assert.equal(result.code, 3);
    const models = path.join(cwd, 'models');
    assert.match(result.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+\/asr-models\/sherpa-onnx-whisper-base\.tar\.bz2 \(ECONNREFUSED\)\. Are you offline\?/);
    assert.ok(result.stderr.includes(`unpack it into ${models}`), result.stderr);
    assert.ok(result.stderr.includes(path.join(models, 'sherpa-onnx-whisper-base', 'base-encoder.int8.onnx')), result.stderr);
    assert.ok(result.stderr.includes(path.join(models, 'silero_vad.onnx')), result.stderr);
    await assertNothingInstalled(models);
  });

  test('the VAD model alone installs with the name silero_vad', async (t) => {
    if (!requireModel(t) || !mirror) {
      return;
    }
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    await mkdir(path.join(cwd, 'models'));
    await copyFile(path.join(FIXTURES, 'not-audio.mp3'), path.join(cwd, 'models', 'notes.txt'));
    const result = await runCesar(['models', 'download', 'silero_vad', '--base-url', `${mirror.baseUrl}/good/`, '--models-dir', 'models'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((await readdir(path.join(cwd, 'models'))).sort(), ['notes.txt', 'silero_vad.onnx']);
  });
});

describe('unpacking .tar.bz2', () => {
  test('the JavaScript decoder (for systems without bzip2) and the system one unpack the same files and refuse a damaged archive', async (t) => {
    const work = await tempDir();
    t.after(() => rm(work, { recursive: true, force: true }));
    const source = path.join(work, 'source', 'sherpa-onnx-whisper-x');
    await mkdir(source, { recursive: true });
    const text = Array.from({ length: 20_000 }, (_, index) => `${index} ${createHash('sha256').update(String(index)).digest('hex')}`).join('\n');
    await writeFile(path.join(source, 'x-tokens.txt'), text);
    const archive = path.join(work, 'x.tar.bz2');
    const packed = await runCommand('tar', ['-C', path.dirname(source), '-cjf', archive, 'sherpa-onnx-whisper-x']);
    assert.equal(packed.code, 0, packed.stderr);
    const damaged = path.join(work, 'damaged.tar.bz2');
    const bytes = await readFile(archive);
    bytes.fill(0x55, Math.floor(bytes.length / 2), Math.floor(bytes.length / 2) + 512);
    await writeFile(damaged, bytes);

    const decoders: [string, string | null][] = [['javascript', null]];
    const system = await findSystemBzip2();
    if (system !== null) {
      decoders.push(['system', system]);
    }
    for (const [name, bzip2] of decoders) {
      const out = path.join(work, `out-${name}`);
      await extractTarBz2(archive, out, bzip2);
      assert.equal(await readFile(path.join(out, 'sherpa-onnx-whisper-x', 'x-tokens.txt'), 'utf8'), text, name);
      await assert.rejects(extractTarBz2(damaged, path.join(work, `damaged-${name}`), bzip2), `${name} accepted a damaged archive`);
    }
  });
});
