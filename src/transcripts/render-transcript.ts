/**
 * @module transcripts/render-transcript
 * A transcript's renderings: txt, json, verbose_json, srt and vtt. Every format is produced from the same
 * stored segments on read, so the same audio gives the same words in every format.
 */
import type { JobTask, ResultFormat } from '../domain.ts';
import type { Transcript, TranscriptSegment } from './transcript.ts';

export interface TranscriptContext {
  jobId: string;
  model: string;
  task: JobTask;
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
  lines: string[];
}

export interface SubtitleOptions {
  /** The longest line in characters; a single longer word gets a line of its own. */
  maxLineWidth: number;
  maxLinesPerCue: number;
}

export const DEFAULT_SUBTITLE_OPTIONS: SubtitleOptions = { maxLineWidth: 42, maxLinesPerCue: 2 };

interface Piece {
  text: string;
  start: number | null;
  end: number | null;
}

/** Breaks pieces (words) into lines of at most `width` characters, keeping the pieces of each line. */
function wrap(pieces: readonly Piece[], width: number): Piece[][] {
  const lines: Piece[][] = [];
  let line: Piece[] = [];
  let length = 0;
  for (const piece of pieces) {
    const added = line.length === 0 ? piece.text.length : length + 1 + piece.text.length;
    if (line.length > 0 && added > width) {
      lines.push(line);
      line = [];
      length = 0;
    }
    line.push(piece);
    length = line.length === 1 ? piece.text.length : length + 1 + piece.text.length;
  }
  if (line.length > 0) {
    lines.push(line);
  }
  return lines;
}

/** The cues of one segment: its words wrapped into lines, the lines grouped into cues. */
function segmentCues(segment: TranscriptSegment, options: SubtitleOptions): Cue[] {
  const text = segment.text.trim();
  const timed = segment.words !== null && segment.words.length > 0 && segment.words.map((word) => word.word).join(' ') === text.split(/\s+/).join(' ');
  const pieces: Piece[] = timed
    ? (segment.words ?? []).map((word) => ({ text: word.word, start: word.start, end: word.end }))
    : text.split(/\s+/).map((word) => ({ text: word, start: null, end: null }));
  const lines = wrap(pieces, options.maxLineWidth);
  const groups: Piece[][][] = [];
  for (let i = 0; i < lines.length; i += options.maxLinesPerCue) {
    groups.push(lines.slice(i, i + options.maxLinesPerCue));
  }
  // Without word times, a cue gets the share of the segment's time that its characters have.
  const totalChars = pieces.reduce((sum, piece) => sum + piece.text.length + 1, 0);
  let charsBefore = 0;
  return groups.map((group, index) => {
    const groupPieces = group.flat();
    const chars = groupPieces.reduce((sum, piece) => sum + piece.text.length + 1, 0);
    const span = segment.end - segment.start;
    let start = segment.start + (span * charsBefore) / totalChars;
    let end = segment.start + (span * (charsBefore + chars)) / totalChars;
    charsBefore += chars;
    if (timed) {
      start = index === 0 ? segment.start : (groupPieces[0]?.start ?? start);
      end = index === groups.length - 1 ? segment.end : (groupPieces.at(-1)?.end ?? end);
    }
    return { start, end, lines: group.map((line) => line.map((piece) => piece.text).join(' ')) };
  });
}

/** Subtitle cues: shaped by `options`, ordered, never overlapping, clamped to the audio's length. */
function cues(transcript: Transcript, options: SubtitleOptions): Cue[] {
  const result: Cue[] = [];
  for (const segment of transcript.segments) {
    if (segment.text.trim().length === 0) {
      continue;
    }
    for (const cue of segmentCues(segment, options)) {
      const previousEnd = result.at(-1)?.end ?? 0;
      const start = Math.min(Math.max(cue.start, previousEnd), transcript.durationSeconds);
      const end = Math.min(Math.max(cue.end, start), transcript.durationSeconds);
      result.push({ start, end, lines: cue.lines });
    }
  }
  return result;
}

function jsonBody(transcript: Transcript, context: TranscriptContext, verbose: boolean): string {
  return JSON.stringify({
    job_id: context.jobId,
    model: context.model,
    task: context.task,
    language: transcript.language,
    language_confidence: transcript.languageConfidence ?? null,
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

export function renderTranscript(
  transcript: Transcript,
  format: ResultFormat,
  context: TranscriptContext,
  subtitles: SubtitleOptions = DEFAULT_SUBTITLE_OPTIONS,
): RenderedTranscript {
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
        body: cues(transcript, subtitles)
          .map((cue, index) => `${index + 1}\n${clockTime(cue.start, ',')} --> ${clockTime(cue.end, ',')}\n${cue.lines.join('\n')}\n`)
          .join('\n'),
      };
    case 'vtt':
      return {
        contentType: 'text/vtt; charset=utf-8',
        extension: 'vtt',
        body: `WEBVTT\n\n${cues(transcript, subtitles)
          .map((cue) => `${clockTime(cue.start, '.')} --> ${clockTime(cue.end, '.')}\n${cue.lines.join('\n')}\n`)
          .join('\n')}`,
      };
  }
}
