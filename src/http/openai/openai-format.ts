/**
 * @module http/openai/openai-format
 * Renders a stored transcript as OpenAI's audio endpoints answer: `json`, `text`, `srt`, `vtt` and
 * `verbose_json` with OpenAI's segment fields. Subtitles are Cesar's own cues (the same as `GET /jobs/{id}/result`).
 */
import { deflateSync } from 'node:zlib';

import { renderTranscript, transcriptText } from '../../transcripts/render-transcript.ts';
import type { Transcript } from '../../transcripts/transcript.ts';
import type { Schemas } from '../operation-types.ts';
import { languageName } from './language-names.ts';

export type OpenAIResponseFormat = Schemas['OpenAIResponseFormat'];
export type OpenAIGranularity = Schemas['TimestampGranularity'];

export interface OpenAIRendered {
  contentType: string;
  body: string;
}

const round3 = (seconds: number): number => Math.round(seconds * 1000) / 1000;

/** OpenAI's measure of repetitive text: its UTF-8 length over its zlib-compressed length. */
export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length === 0 ? 0 : Math.round((bytes.length / deflateSync(bytes).length) * 1000) / 1000;
}

export function durationUsage(transcript: Transcript): Schemas['OpenAIDurationUsage'] {
  return { type: 'duration', seconds: Math.ceil(transcript.durationSeconds) };
}

export function verboseTranscription(
  transcript: Transcript,
  task: 'transcribe' | 'translate',
  granularities: readonly OpenAIGranularity[],
): Schemas['OpenAIVerboseTranscription'] {
  const body: Schemas['OpenAIVerboseTranscription'] = {
    task,
    // A translation is English whatever was spoken.
    language: languageName(task === 'translate' ? 'en' : transcript.language),
    duration: round3(transcript.durationSeconds),
    text: transcriptText(transcript),
  };
  const spoken = transcript.segments.filter((segment) => segment.text.trim().length > 0);
  if (granularities.length === 0 || granularities.includes('segment')) {
    body.segments = spoken.map((segment, index) => {
      const text = segment.text.trim();
      return {
        id: index,
        seek: Math.round(segment.start * 100),
        start: round3(segment.start),
        end: round3(segment.end),
        text,
        tokens: [],
        temperature: 0,
        avg_logprob: 0,
        compression_ratio: compressionRatio(text),
        no_speech_prob: 0,
      };
    });
  }
  if (granularities.includes('word')) {
    body.words = spoken.flatMap((segment) => (segment.words ?? []).map((word) => ({ word: word.word, start: round3(word.start), end: round3(word.end) })));
  }
  body.usage = durationUsage(transcript);
  return body;
}

export function renderOpenAI(
  transcript: Transcript,
  format: OpenAIResponseFormat,
  context: { jobId: string; model: string; task: 'transcribe' | 'translate'; granularities: readonly OpenAIGranularity[] },
): OpenAIRendered {
  switch (format) {
    case 'json': {
      const body: Schemas['OpenAITranscription'] = { text: transcriptText(transcript), usage: durationUsage(transcript) };
      return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(body) };
    }
    case 'verbose_json':
      return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(verboseTranscription(transcript, context.task, context.granularities)) };
    case 'text':
      return { contentType: 'text/plain; charset=utf-8', body: `${transcriptText(transcript)}\n` };
    case 'srt':
    case 'vtt':
      // OpenAI answers subtitles as text/plain; clients read the body as text whatever the format.
      return { contentType: 'text/plain; charset=utf-8', body: renderTranscript(transcript, format, context).body };
  }
}
