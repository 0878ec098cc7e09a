/**
 * @module transcription/transcript
 * The canonical transcript (stored once per job) and its renderings. Every format is produced from the same
 * segments on read, so the same audio gives the same words in every format.
 */
export interface TranscriptWord {
  word: string;
  start: number;
  end: number;
}

export interface TranscriptSegment {
  id: number;
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  text: string;
  /** Null when the model gives no word timestamps. */
  words: TranscriptWord[] | null;
}

export interface Transcript {
  language: string;
  durationSeconds: number;
  segments: TranscriptSegment[];
}

export type ResultFormat = 'txt' | 'json' | 'verbose_json' | 'srt' | 'vtt';

export interface TranscriptContext {
  jobId: string;
  model: string;
  task: 'transcribe' | 'translate';
}

export interface RenderedTranscript {
  contentType: string;
  extension: string;
  body: string;
}

const round3 = (seconds: number): number => Math.round(seconds * 1000) / 1000;

export function transcriptText(transcript: Transcript): string {
  return transcript.segments
    .map((segment) => segment.text.trim())
    .filter((text) => text.length > 0)
    .join(' ');
}

function clockTime(seconds: number, fractionSeparator: ',' | '.'): string {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const hours = Math.floor(totalMs / 3_600_000);
  const minutes = Math.floor((totalMs % 3_600_000) / 60_000);
  const secs = Math.floor((totalMs % 60_000) / 1000);
  const ms = totalMs % 1000;
  const pad = (value: number, width = 2) => String(value).padStart(width, '0');
  return `${pad(hours)}:${pad(minutes)}:${pad(secs)}${fractionSeparator}${pad(ms, 3)}`;
}

interface Cue {
  start: number;
  end: number;
  text: string;
}

/** Subtitle cues: one per non-empty segment, ordered, never overlapping, clamped to the audio's length. */
function cues(transcript: Transcript): Cue[] {
  const result: Cue[] = [];
  for (const segment of transcript.segments) {
    const text = segment.text.trim();
    if (text.length === 0) {
      continue;
    }
    const previousEnd = result.at(-1)?.end ?? 0;
    const start = Math.min(Math.max(segment.start, previousEnd), transcript.durationSeconds);
    const end = Math.min(Math.max(segment.end, start), transcript.durationSeconds);
    result.push({ start, end, text });
  }
  return result;
}

function jsonBody(transcript: Transcript, context: TranscriptContext, verbose: boolean): string {
  return JSON.stringify({
    job_id: context.jobId,
    model: context.model,
    task: context.task,
    language: transcript.language,
    duration_seconds: round3(transcript.durationSeconds),
    text: transcriptText(transcript),
    segments: transcript.segments.map((segment) => ({
      id: segment.id,
      start: round3(segment.start),
      end: round3(segment.end),
      text: segment.text.trim(),
      ...(verbose
        ? { words: (segment.words ?? []).map((word) => ({ word: word.word, start: round3(word.start), end: round3(word.end) })) }
        : {}),
    })),
  });
}

export function renderTranscript(transcript: Transcript, format: ResultFormat, context: TranscriptContext): RenderedTranscript {
  switch (format) {
    case 'txt':
      return { contentType: 'text/plain; charset=utf-8', extension: 'txt', body: `${transcriptText(transcript)}\n` };
    case 'json':
      return { contentType: 'application/json; charset=utf-8', extension: 'json', body: jsonBody(transcript, context, false) };
    case 'verbose_json':
      return { contentType: 'application/json; charset=utf-8', extension: 'json', body: jsonBody(transcript, context, true) };
    case 'srt':
      return {
        contentType: 'application/x-subrip; charset=utf-8',
        extension: 'srt',
        body: cues(transcript)
          .map((cue, index) => `${index + 1}\n${clockTime(cue.start, ',')} --> ${clockTime(cue.end, ',')}\n${cue.text}\n`)
          .join('\n'),
      };
    case 'vtt':
      return {
        contentType: 'text/vtt; charset=utf-8',
        extension: 'vtt',
        body: `WEBVTT\n\n${cues(transcript)
          .map((cue) => `${clockTime(cue.start, '.')} --> ${clockTime(cue.end, '.')}\n${cue.text}\n`)
          .join('\n')}`,
      };
  }
}
