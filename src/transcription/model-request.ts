/**
 * @module transcription/model-request
 * Whether a model can do what a request asks (the language, the task). The submission refuses with it, the
 * command line too, and the worker checks again before the engine sees the request: the engine ends the process
 * on a language it does not know.
 */
import type { JobTask } from '../domain.ts';

export interface ModelAbilities {
  name: string;
  multilingual: boolean;
  languages: readonly string[];
}

export interface ModelRequestRefusal {
  code: 'unsupported_language' | 'unsupported_task';
  message: string;
}

export function checkModelRequest(model: ModelAbilities, request: { language: string | null; task: JobTask }): ModelRequestRefusal | null {
  const { language, task } = request;
  if (language !== null && !model.languages.includes(language)) {
    return { code: 'unsupported_language', message: `The model ${model.name} does not support the language ${language}.` };
  }
  if (task === 'translate' && !model.multilingual) {
    return { code: 'unsupported_task', message: `The model ${model.name} is English-only and cannot translate.` };
  }
  return null;
}
