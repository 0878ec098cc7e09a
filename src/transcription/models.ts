/**
 * @module transcription/models
 * Finds the Whisper models installed in the models directory, in the layout of sherpa-onnx's release archives
 * (`sherpa-onnx-whisper-<name>/<name>-encoder[.int8].onnx`, `<name>-decoder[.int8].onnx`, `<name>-tokens.txt`),
 * and reads what each supports from its encoder metadata instead of guessing from its name.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { readOnnxMetadata } from './onnx-metadata.ts';

export interface ModelFiles {
  encoder: string;
  decoder: string;
  tokens: string;
}

export interface InstalledModel {
  name: string;
  dir: string;
  files: ModelFiles;
  multilingual: boolean;
  /** Language codes the engine accepts for this model; anything else would make it exit the process. */
  languages: readonly string[];
  /** The decoder has cross-attention outputs (metadata version 2 with alignment heads). */
  wordTimestamps: boolean;
  sizeBytes: number;
}

export interface BrokenModel {
  name: string;
  dir: string;
  reason: string;
}

export interface ModelScan {
  models: InstalledModel[];
  broken: BrokenModel[];
  /** The Silero VAD model file, when present. */
  vadModel: string | null;
}

export interface ModelCatalog {
  scan(): Promise<ModelScan>;
  readonly modelsDir: string;
}

/** The folder name of an installed Whisper model, before the model's name (as in the release archives). */
export const MODEL_DIR_PREFIX = 'sherpa-onnx-whisper-';
export const VAD_MODEL_FILE = 'silero_vad.onnx';

async function fileSize(file: string): Promise<number | null> {
  try {
    const info = await stat(file);
    return info.isFile() ? info.size : null;
  } catch {
    return null;
  }
}

/** The int8 file when present (what the official archives ship alongside the float one), else the float one. */
async function pickFile(dir: string, name: string, part: 'encoder' | 'decoder'): Promise<string | null> {
  for (const candidate of [`${name}-${part}.int8.onnx`, `${name}-${part}.onnx`]) {
    const file = path.join(dir, candidate);
    if ((await fileSize(file)) !== null) {
      return file;
    }
  }
  return null;
}

/** Integer keys the engine reads with `atoi` and exits the process on when absent, empty or negative. */
const REQUIRED_INT_KEYS = [
  'n_mels', 'n_text_layer', 'n_text_ctx', 'n_text_state', 'n_vocab', 'sot', 'eot', 'blank_id', 'translate',
  'transcribe', 'is_multilingual', 'no_timestamps', 'no_speech',
];
const INT_LIST = /^\d+(,\d+)*$/;

/** What in the encoder metadata would make the engine exit the process, or null when nothing would. */
export function checkEncoderMetadata(metadata: Readonly<Record<string, string>>): string | null {
  const bad = REQUIRED_INT_KEYS.filter((key) => !/^\d+$/.test(metadata[key] ?? ''));
  if (bad.length > 0) {
    return `encoder metadata lacks a whole number for ${bad.join(', ')}`;
  }
  if (!INT_LIST.test(metadata.sot_sequence ?? '')) {
    return 'encoder metadata sot_sequence is not a list of whole numbers';
  }
  if (metadata.is_multilingual !== '0') {
    const tokens = metadata.all_language_tokens ?? '';
    const codes = (metadata.all_language_codes ?? '').split(',').filter(Boolean);
    if (!INT_LIST.test(tokens) || tokens.split(',').length !== codes.length || codes.length === 0) {
      return 'encoder metadata of a multilingual model needs as many all_language_tokens as all_language_codes';
    }
    if ((metadata.sot_sequence ?? '').split(',').length < 3) {
      return 'encoder metadata sot_sequence of a multilingual model needs three entries';
    }
  }
  return null;
}

/** Tokens files already checked, by path, size and modification time: they do not change between scans. */
const checkedTokens = new Map<string, string | null>();
const TOKEN_LINE = /^[A-Za-z0-9+/]*={0,2} \d+$/;

/** A line that is not `<base64> <id>` makes the engine exit the process; find it first. */
async function checkTokensFile(file: string): Promise<string | null> {
  let key: string;
  try {
    const info = await stat(file);
    key = JSON.stringify([file, info.size, info.mtimeMs]);
  } catch {
    return 'tokens file unreadable';
  }
  const cached = checkedTokens.get(key);
  if (cached !== undefined) {
    return cached;
  }
  const lines = (await readFile(file, 'utf8')).split('\n');
  const badLine = lines.findIndex((line, index) => !(TOKEN_LINE.test(line) || (line === '' && index === lines.length - 1)));
  const problem = badLine === -1 ? null : `tokens file line ${badLine + 1} is not "<base64> <id>"`;
  checkedTokens.set(key, problem);
  return problem;
}

async function inspectModel(dir: string, name: string): Promise<InstalledModel | BrokenModel> {
  const encoder = await pickFile(dir, name, 'encoder');
  const decoder = await pickFile(dir, name, 'decoder');
  const tokens = path.join(dir, `${name}-tokens.txt`);
  const tokensSize = await fileSize(tokens);
  if (encoder === null || decoder === null || tokensSize === null) {
    const missing = [encoder === null && 'encoder', decoder === null && 'decoder', tokensSize === null && 'tokens'].filter(Boolean);
    return { name, dir, reason: `missing ${missing.join(', ')} file` };
  }
  let metadata: Record<string, string>;
  try {
    metadata = await readOnnxMetadata(encoder);
  } catch (error) {
    return { name, dir, reason: `unreadable encoder: ${(error as Error).message}` };
  }
  const metadataProblem = checkEncoderMetadata(metadata);
  if (metadataProblem !== null) {
    return { name, dir, reason: metadataProblem };
  }
  const tokensProblem = await checkTokensFile(tokens);
  if (tokensProblem !== null) {
    return { name, dir, reason: tokensProblem };
  }
  const multilingual = metadata.is_multilingual !== '0';
  const codes = (metadata.all_language_codes ?? '').split(',').filter((code) => /^[a-z]{2,3}$/.test(code));
  const sizes = await Promise.all([fileSize(encoder), fileSize(decoder)]);
  return {
    name,
    dir,
    files: { encoder, decoder, tokens },
    multilingual,
    languages: multilingual ? codes : ['en'],
    wordTimestamps: Number(metadata.version ?? '1') >= 2 && Number(metadata.n_alignment_heads ?? '0') > 0,
    sizeBytes: (sizes[0] ?? 0) + (sizes[1] ?? 0) + tokensSize,
  };
}

export function createModelCatalog(modelsDir: string): ModelCatalog {
  return {
    modelsDir,
    async scan() {
      let entries: string[];
      try {
        entries = await readdir(modelsDir);
      } catch {
        return { models: [], broken: [], vadModel: null };
      }
      const results = await Promise.all(
        entries
          .filter((entry) => entry.startsWith(MODEL_DIR_PREFIX) && entry.length > MODEL_DIR_PREFIX.length)
          .sort()
          .map((entry) => inspectModel(path.join(modelsDir, entry), entry.slice(MODEL_DIR_PREFIX.length))),
      );
      const vadPath = path.join(modelsDir, VAD_MODEL_FILE);
      return {
        models: results.filter((result): result is InstalledModel => 'files' in result),
        broken: results.filter((result): result is BrokenModel => 'reason' in result),
        vadModel: (await fileSize(vadPath)) ? vadPath : null,
      };
    },
  };
}
