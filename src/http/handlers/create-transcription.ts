/**
 * @module http/handlers/create-transcription
 * `POST /v1/audio/transcriptions` (OpenAI-compatible); see `http/openai/audio-request.ts`.
 */
import type { ApiDeps } from '../deps.ts';
import { handleAudioRequest } from '../openai/audio-request.ts';
import type { OperationHandler } from '../operation-types.ts';

export function createTranscriptionHandler(deps: ApiDeps): OperationHandler<'createTranscription'> {
  return (_c, req, res) => handleAudioRequest(deps, 'transcribe', req, res);
}
