/**
 * @module http/handlers/create-translation
 * `POST /v1/audio/translations` (OpenAI-compatible): speech in any language into English text.
 */
import type { ApiDeps } from '../deps.ts';
import { handleAudioRequest } from '../openai/audio-request.ts';
import type { OperationHandler } from '../operation-types.ts';

export function createTranslationHandler(deps: ApiDeps): OperationHandler<'createTranslation'> {
  return (_c, req, res) => handleAudioRequest(deps, 'translate', req, res);
}
