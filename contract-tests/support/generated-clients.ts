/**
 * @module contract-tests/support/generated-clients
 * What the tests of generated clients share: the generators themselves (openapi-generator from PyPI, the npm
 * ones from node_modules), the toolchains that compile their output, and the check of the flow every client's
 * program prints (see examples/clients/). Each client is generated fresh into a temporary folder, never kept.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { cp, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

import { REPO_ROOT, requireTool, runCommand } from './cli.ts';
import type { CliResult } from './cli.ts';
import { words } from './harness.ts';

export const SPEC = path.join(REPO_ROOT, 'openapi.yaml');
export const CLIENT_EXAMPLES = path.join(REPO_ROOT, 'examples', 'clients');
export const JFK = 'and so my fellow americans ask not what your country can do for you ask what you can do for your country';
/** A Python with openapi-python-client and openapi-generator-cli installed (.ci/run makes a virtual environment). */
export const PYTHON = process.env.CESAR_TEST_PYTHON ?? 'python3';

/** Every generated client lives under one folder, removed when the test process ends. */
const root = await mkdtemp(path.join(os.tmpdir(), 'cesar-clients-'));
process.once('exit', () => rmSync(root, { recursive: true, force: true }));

export async function workDir(name: string): Promise<string> {
  // Whichever client test comes first sets openapi-generator going for the four that need it (see below).
  startOpenapiGenerators();
  return mkdtemp(path.join(root, `${name}-`));
}

export function assertSucceeded(step: string, result: CliResult): void {
  assert.equal(result.code, 0, `${step} failed:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
}

/**
 * The flow every example prints: the job completed, its SRT subtitles, its typed JSON transcript, the job found in
 * the list, cancelling the finished job refused with a 409 problem, and the job gone once deleted.
 */
export function assertFlow(stdout: string): void {
  const match = /^job [0-9a-f-]{36} completed\n(?<srt>1\n00:00:\d\d,\d{3} --> [\s\S]*?)text: (?<text>.*)\nsegments: (?<segments>\d+)\nlisted: true\ncancel: 409 job_finished\ndeleted: 404\n?$/.exec(stdout);
  assert.ok(match?.groups, `unexpected output:\n${stdout}`);
  const { srt = '', text = '', segments = '0' } = match.groups;
  assert.deepEqual(words(srt.split('\n').filter((line) => !/^\d+$|-->/.test(line)).join(' ')), JFK.split(' '), 'the SRT subtitles');
  assert.deepEqual(words(text), JFK.split(' '), 'the JSON transcript');
  assert.ok(Number(segments) >= 1);
}

// --- openapi-generator -----------------------------------------------------------------------------------------

/** The `openapi-generator-cli` script that pip puts beside the test Python (PyPI's package carries the jar). */
function openapiGeneratorCli(): string {
  const besidePython = path.join(path.dirname(PYTHON), 'openapi-generator-cli');
  return existsSync(besidePython) ? besidePython : 'openapi-generator-cli';
}

/** The options each generator needs; documented in the README's table. */
export const OPENAPI_GENERATOR_OPTIONS = {
  python: ['--package-name', 'cesar_client'],
  'typescript-fetch': [],
  go: ['--git-user-id', 'cesar', '--git-repo-id', 'cesar', '--additional-properties=packageName=cesar'],
  // jackson-databind-nullable is not needed by this spec, and not in the local Maven repository.
  java: ['--library', 'native', '--additional-properties=openApiNullable=false'],
} as const;
export type OpenapiGenerator = keyof typeof OPENAPI_GENERATOR_OPTIONS;

let generatorAvailable: Promise<boolean> | null = null;
const generations = new Map<OpenapiGenerator, Promise<{ dir: string; result: CliResult }>>();

/**
 * Starts all four generators at once, in the background: each runs a JVM for a minute or more, and the other
 * client tests run meanwhile. A failure is reported by the test that awaits that generator's output.
 */
function startOpenapiGenerators(): void {
  if (generations.size > 0) {
    return;
  }
  for (const name of Object.keys(OPENAPI_GENERATOR_OPTIONS) as OpenapiGenerator[]) {
    const started = mkdtemp(path.join(root, `openapi-generator-${name}-`)).then(async (dir) => {
      const output = path.join(dir, 'generated');
      const result = await runCommand(openapiGeneratorCli(), ['generate', '-i', SPEC, '-g', name, '-o', output, ...OPENAPI_GENERATOR_OPTIONS[name]]);
      return { dir, result };
    });
    started.catch(() => undefined);
    generations.set(name, started);
  }
}

/** The output of one openapi-generator generator, generated fresh from openapi.yaml. */
export async function openapiGenerator(t: TestContext, generator: OpenapiGenerator): Promise<string | null> {
  generatorAvailable ??= runCommand(openapiGeneratorCli(), ['version']).then(
    (result) => result.code === 0,
    () => false,
  );
  if (!requireTool(t, `openapi-generator-cli beside ${PYTHON}, with Java`, await generatorAvailable, 'apt-get install default-jre-headless; pip install openapi-generator-cli==7.26.0 in the CESAR_TEST_PYTHON environment')) {
    return null;
  }
  startOpenapiGenerators();
  const generation = await generations.get(generator);
  assert.ok(generation);
  assertSucceeded(`openapi-generator ${generator}`, generation.result);
  return generation.dir;
}

// --- TypeScript ---------------------------------------------------------------------------------------------------

const TSC = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * Compiles `flow.ts` (copied from examples/clients/<example>) with the generated client beside it, under
 * strict settings, to `out/`; returns the compiled program.
 */
export async function compileTypeScript(dir: string, example: string, module: 'commonjs' | 'nodenext'): Promise<string> {
  await cp(path.join(CLIENT_EXAMPLES, example, 'flow.ts'), path.join(dir, 'flow.ts'));
  const compilerOptions = {
    target: 'es2022',
    module,
    moduleResolution: module === 'commonjs' ? 'node10' : 'nodenext',
    ...(module === 'commonjs' ? { esModuleInterop: true, ignoreDeprecations: '5.0' } : {}),
    lib: ['es2022', 'dom', 'dom.iterable'],
    types: ['node'],
    typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
    strict: true,
    skipLibCheck: true,
    outDir: 'out',
  };
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['flow.ts'] }));
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: module === 'commonjs' ? 'commonjs' : 'module' }));
  assertSucceeded('tsc', await runCommand(process.execPath, [TSC, '-p', dir], { cwd: dir }));
  return path.join(dir, 'out', 'flow.js');
}

// --- Java ---------------------------------------------------------------------------------------------------------

const MAVEN_REPOSITORY = process.env.CESAR_TEST_MAVEN_REPOSITORY ?? path.join(os.homedir(), '.m2', 'repository');
const DEBIAN_JARS = ['httpclient', 'httpcore', 'httpmime', 'commons-logging', 'commons-codec'].map((name) => `/usr/share/java/${name}.jar`);

function compareVersions(a: string, b: string): number {
  const parts = (version: string) => version.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  const [left, right] = [parts(a), parts(b)];
  for (let index = 0; index < Math.max(left.length, right.length); index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) {
      return difference;
    }
  }
  return 0;
}

/** The newest version of an artifact in the local Maven repository whose version starts with `prefix`. */
async function mavenJar(group: string, artifact: string, prefix = ''): Promise<string | null> {
  const dir = path.join(MAVEN_REPOSITORY, ...group.split('.'), artifact);
  const versions = await readdir(dir).catch(() => [] as string[]);
  const present = versions.filter((version) => version.startsWith(prefix) && existsSync(path.join(dir, version, `${artifact}-${version}.jar`)));
  const newest = present.sort(compareVersions).pop();
  return newest === undefined ? null : path.join(dir, newest, `${artifact}-${newest}.jar`);
}

/**
 * The class path the generated Java client (library `native`) compiles and runs with: Jackson (one minor version
 * throughout, the one whose java.time module is there), jsr305 and the annotation API from the local Maven
 * repository, and Apache HttpClient's MIME support (for multipart forms) from Debian's packages.
 */
export async function javaClassPath(): Promise<string[] | null> {
  const jsr310 = await mavenJar('com.fasterxml.jackson.datatype', 'jackson-datatype-jsr310');
  const family = jsr310 === null ? null : /jackson-datatype-jsr310-(\d+\.\d+)\./.exec(jsr310)?.[1];
  if (!jsr310 || !family) {
    return null;
  }
  const jars = [
    jsr310,
    await mavenJar('com.fasterxml.jackson.core', 'jackson-databind', `${family}.`),
    await mavenJar('com.fasterxml.jackson.core', 'jackson-core', `${family}.`),
    await mavenJar('com.fasterxml.jackson.core', 'jackson-annotations', family),
    await mavenJar('com.google.code.findbugs', 'jsr305'),
    await mavenJar('javax.annotation', 'javax.annotation-api'),
    ...DEBIAN_JARS.filter((jar) => existsSync(jar)),
  ];
  return jars.every((jar): jar is string => jar !== null) && DEBIAN_JARS.slice(0, 3).every((jar) => existsSync(jar)) ? jars : null;
}
