import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { ConfigError, loadConfig, SETTINGS } from '../src/config.ts';
import type { Setting } from '../src/config.ts';
import { configMarkdownTable, README_TABLE_END, README_TABLE_START } from '../src/config-docs.ts';
import { REPO_ROOT, runCesar } from './support/cli.ts';
import { tempDir } from './support/harness.ts';

const ROWS: Setting<unknown>[] = Object.values(SETTINGS);

const rejects = (variable: string, value: string) =>
  assert.throws(
    () => loadConfig({ [variable]: value }, '/srv'),
    (error: unknown) => error instanceof ConfigError && error.variable === variable,
    `${variable}=${value} was accepted`,
  );

describe('the configuration table', () => {
  test("the README's configuration table is the one generated from src/config.ts (fix: npm run docs:config)", async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf(README_TABLE_START);
    const end = readme.indexOf(README_TABLE_END);
    assert.ok(start >= 0 && end > start, 'README.md lost the configuration table markers');
    const inReadme = readme.slice(start + README_TABLE_START.length + 1, end);
    assert.equal(inReadme, configMarkdownTable(), 'README.md drifted from src/config.ts: run npm run docs:config');
  });

  test('every variable is named once, and every CESAR_ variable in src/ and the README is in the table', async () => {
    const variables = ROWS.map((row) => row.variable);
    assert.equal(new Set(variables).size, variables.length);
    const files = (await readdir(path.join(REPO_ROOT, 'src'), { recursive: true })).filter((file) => file.endsWith('.ts')).map((file) => path.join(REPO_ROOT, 'src', file));
    for (const file of [...files, path.join(REPO_ROOT, 'README.md')]) {
      const named = (await readFile(file, 'utf8')).match(/\bCESAR_[A-Z0-9_]*[A-Z0-9]\b/g) ?? [];
      // The test suite's own switches are not settings of the service.
      for (const variable of named.filter((name) => !/^CESAR_(TEST|CONTRACT)_/.test(name))) {
        assert.ok(variables.includes(variable), `${path.relative(REPO_ROOT, file)} names ${variable}, which is not in the table of src/config.ts`);
      }
    }
  });

  test('whole numbers are held to the bounds the table shows, and a bad value names its variable', () => {
    for (const row of ROWS) {
      if (!row.range) {
        continue;
      }
      const { min, max } = row.range;
      assert.equal(row.accepts, `${min} to ${max}`);
      loadConfig({ [row.variable]: String(min) }, '/srv');
      loadConfig({ [row.variable]: String(max) }, '/srv');
      rejects(row.variable, String(max + 1));
      rejects(row.variable, 'many');
      if (min > 0) {
        rejects(row.variable, String(min - 1));
      }
    }
  });

  test('the defaults the table shows are the ones loadConfig applies', () => {
    const config = loadConfig({}, '/srv');
    assert.equal(config.port, 8000);
    assert.equal(config.dataDir, '/srv/data');
    assert.equal(config.modelsDir, '/srv/models');
    assert.equal(config.offline, false);
    assert.equal(config.maxUploadBytes, 500 * 1024 * 1024);
    assert.equal(config.maxDownloadBytes, config.maxUploadBytes);
    assert.equal(config.workerMaxRssBytes, 2048 * 1024 * 1024);
    for (const row of ROWS) {
      const shown = /^`(\d+)`/.exec(row.shownDefault)?.[1];
      if (shown !== undefined && row.range) {
        // The configuration may hold another unit (MB as bytes): read the shown default back through the row.
        assert.deepEqual(row.read(shown, { env: {}, cwd: '/srv' }), row.read(undefined, { env: {}, cwd: '/srv' }), row.variable);
      }
    }
    for (const [variable, value] of [
      ['CESAR_OFFLINE', 'maybe'],
      ['CESAR_LOG_FORMAT', 'xml'],
      ['CESAR_DEFAULT_MODEL', '../etc'],
      ['CESAR_MODELS_BASE_URL', 'ftp://example.com/'],
    ] as const) {
      rejects(variable, value);
    }
  });

  test('cesar serve --help lists every flag and every variable with its default', async (t) => {
    const cwd = await tempDir();
    t.after(() => rm(cwd, { recursive: true, force: true }));
    const result = await runCesar(['serve', '--help'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    for (const row of ROWS) {
      assert.ok(result.stdout.includes(`  ${row.variable} (default ${row.shownDefault.replaceAll('`', '')};`), `--help lacks ${row.variable}`);
      if (row.flag) {
        assert.match(result.stdout, new RegExp(`--${row.flag.name}\\b.*sets ${row.variable}`), `--help lacks --${row.flag.name}`);
      }
    }
    const badFlag = await runCesar(['serve', '--workers', '65'], { cwd });
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /--workers must be a whole number between 1 and 64/);
  });
});
