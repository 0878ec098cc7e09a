/**
 * @module transcription/task-messages
 * What the server and a transcription worker process say to each other. Kept apart from the task itself,
 * which loads the native engine on import, so the server side can use these without loading it.
 */
import type { JobTask } from '../domain.ts';
import type { Transcript, TranscriptSegment } from '../transcripts/transcript.ts';

export interface TaskModel {
  name: string;
  encoder: string;
  decoder: string;
  tokens: string;
  multilingual: boolean;
  languages: readonly string[];
  wordTimestamps: boolean;
}

export interface TranscribeTaskInput {
  pcmPath: string;
  model: TaskModel;
  vadModel: string | null;
  language: string | null;
  task: JobTask;
  /** Word timestamps asked for (only when the model supports them; the submission refuses otherwise). */
  wordTimestamps: boolean;
}

/** What the worker process reports about itself; the pool decides from it when to recycle the process. */
export interface WorkerReport {
  pid: number;
  /** The model loaded in this process now. */
  model: string | null;
  rssBytes: number;
  /** The most this process has ever held, from the kernel's maxrss. */
  peakRssBytes: number;
  jobs: number;
}

export interface TaskOutput {
  transcript: Transcript;
  worker: WorkerReport;
  /** Wall time spent inside the recognizer's decode calls, for the overhead benchmark. */
  recognizerMs: number;
  /** Wall time of the whole task in this process. */
  taskMs: number;
  /** Audio handed to the recognizer (windows with their padding) and in how many decodes. */
  decodedSeconds: number;
  decodes: number;
}

/**
 * Sent once the worker has read all the audio and started its last decode: the job will free the worker
 * within one window's decode, time enough for the server to prepare the next job.
 */
export interface LastDecodeMessage {
  type: 'cesar:last-decode';
}

/** Sent to the parent after every decoded segment. */
export interface ProgressMessage {
  type: 'cesar:progress';
  processedSeconds: number;
  durationSeconds: number;
  segment: TranscriptSegment | null;
  worker: WorkerReport;
}

function messageType(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
}

export function isProgressMessage(value: unknown): value is ProgressMessage {
  return messageType(value) === 'cesar:progress';
}

export function isLastDecodeMessage(value: unknown): value is LastDecodeMessage {
  return messageType(value) === 'cesar:last-decode';
}
