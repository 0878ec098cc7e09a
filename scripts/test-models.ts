/**
 * Run by `npm test` before the contract tests: makes sure they find a model the way `cesar serve` does.
 * `CESAR_MODELS_DIR` when set, else `./models`; when that lacks the test model (tiny.en, the smallest English
 * one) and the release site is allowed (not `CESAR_OFFLINE`, not CI, which runs offline on its own models), it is
 * fetched into `./models` once, with the VAD model. Never fails the run: without a model the tests that need one
 * are skipped, and both this script and the test run say so loudly.
 */
import process from 'node:process';

import { holdsModel, TEST_MODEL, testModelsSearchDir } from '../contract-tests/support/test-models.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { DEFAULT_DOWNLOAD_TIMEOUT_MS } from '../src/transcription/model-download.ts';
import { createModelInstaller } from '../src/transcription/model-installer.ts';
import { createModelCatalog } from '../src/transcription/models.ts';

const dir = testModelsSearchDir();
const loud = (message: string): void => {
  process.stderr.write(`\n!!! ${message}\n!!! The tests that need a model will be SKIPPED.\n\n`);
};

if (holdsModel(dir, TEST_MODEL)) {
  process.stderr.write(`test models: ${dir}\n`);
} else if (process.env.CESAR_MODELS_DIR) {
  loud(`CESAR_MODELS_DIR=${process.env.CESAR_MODELS_DIR} does not hold sherpa-onnx-whisper-${TEST_MODEL} and silero_vad.onnx.`);
} else if (process.env.CI) {
  loud(`CI does not download models: point CESAR_MODELS_DIR at a folder with sherpa-onnx-whisper-${TEST_MODEL} and silero_vad.onnx.`);
} else {
  const config = loadConfig({ ...process.env, CESAR_MODELS_DIR: dir }, process.cwd());
  if (config.offline) {
    loud(`${dir} does not hold ${TEST_MODEL}, and CESAR_OFFLINE forbids fetching it (npx cesar models download ${TEST_MODEL} installs it).`);
  } else {
    process.stderr.write(`test models: fetching ${TEST_MODEL} into ${dir} (once) from ${config.modelsBaseUrl}\n`);
    const installer = createModelInstaller({
      catalog: createModelCatalog(dir),
      defaultModel: TEST_MODEL,
      baseUrl: config.modelsBaseUrl,
      logger: createLogger({ sink: process.stderr, format: 'pretty' }),
      timeoutMs: DEFAULT_DOWNLOAD_TIMEOUT_MS,
    });
    if ((await installer.installMissing(AbortSignal.timeout(30 * 60_000))) !== 'installed') {
      loud(`${TEST_MODEL} could not be fetched into ${dir} (see above).`);
    }
  }
}
