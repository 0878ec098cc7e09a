/**
 * @module contract-tests/support/test-models
 * Where the tests find their models, the way `cesar serve` does: `CESAR_MODELS_DIR` when it is set, else the
 * project's `./models` (the folder `cesar serve` fills on its first start). `scripts/test-models.ts`, run by
 * `npm test` before the contract tests, fetches the test model into `./models` once when neither has it.
 * No side effects: the script imports this without the test runner.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The smallest English model: what most tests transcribe with. */
export const TEST_MODEL = 'tiny.en';
export const MULTILINGUAL_MODEL = 'base';
export const PROJECT_MODELS_DIR = path.join(import.meta.dirname, '..', '..', 'models');

/** `CESAR_MODELS_DIR`, else `./models`: the folder the tests look in, whether it holds anything or not. */
export function testModelsSearchDir(): string {
  const configured = process.env.CESAR_MODELS_DIR;
  return configured ? path.resolve(configured) : PROJECT_MODELS_DIR;
}

export function holdsModel(dir: string, name: string): boolean {
  return existsSync(path.join(dir, `sherpa-onnx-whisper-${name}`)) && existsSync(path.join(dir, 'silero_vad.onnx'));
}
