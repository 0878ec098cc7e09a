/**
 * @module jobs/job-view
 * The one projection of a job record: what `GET /jobs/{id}` and friends return, what a webhook carries, and the
 * status, progress and error of the live event stream, so none of them can tell a job's state differently.
 */
import type { components } from '../../generated/openapi.d.ts';
import type { JobRow } from './job-store.ts';

type JobSchema = components['schemas']['Job'];

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** What a job's view needs beyond its row. */
export interface JobLive {
  /** From `JobStore.queuePosition`. */
  queuePosition: number | null;
}

/** Seconds left at the job's last measured speed, counted down from that measurement. */
function etaSeconds(row: JobRow, nowMs: number | undefined): number | null {
  if (row.status !== 'processing' || row.speed === null || row.duration_seconds === null) {
    return null;
  }
  const sinceUpdate = nowMs === undefined ? 0 : Math.max(0, (nowMs - row.updated_at) / 1000);
  const remaining = Math.max(0, row.duration_seconds - row.processed_seconds) / row.speed - sinceUpdate;
  return Math.round(Math.max(0, remaining) * 10) / 10;
}

/** Percent of the audio transcribed, to a tenth; 100 means done, and only the stored transcript completes a job. */
export function progressPercent(processedSeconds: number, durationSeconds: number): number {
  const percent = durationSeconds > 0 ? (100 * processedSeconds) / durationSeconds : 0;
  return Math.min(99, Math.round(percent * 10) / 10);
}

/** A job's state as both `GET /jobs/{id}` and the status events of its live stream show it. */
export function jobStateView(row: JobRow): Pick<JobSchema, 'status' | 'progress' | 'error'> {
  return {
    status: row.status,
    progress: row.status === 'completed' ? 100 : row.progress,
    error: row.error_code !== null && row.status !== 'completed' ? { code: row.error_code, message: row.error_message ?? '' } : null,
  };
}

export function jobView(row: JobRow, live: JobLive = { queuePosition: null }, nowMs?: number): JobSchema {
  const terminal = row.status === 'completed' || row.status === 'failed' || row.status === 'canceled';
  const { status, progress, error } = jobStateView(row);
  return {
    id: row.id,
    status,
    progress,
    model: row.model,
    language: row.language,
    task: row.task,
    file_name: row.file_name,
    duration_seconds: row.duration_seconds,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    error,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
    started_at: iso(row.started_at),
    completed_at: terminal ? iso(row.completed_at ?? row.updated_at) : null,
    next_attempt_at: row.status === 'pending' && row.attempts > 0 ? iso(row.run_at) : null,
    expires_at: terminal && row.completed_at !== null && row.retention_seconds !== null ? iso(row.completed_at + row.retention_seconds * 1000) : null,
    links: { self: `/jobs/${row.id}`, result: `/jobs/${row.id}/result`, events: `/jobs/${row.id}/events`, deliveries: `/jobs/${row.id}/deliveries` },
    timestamp_granularity: row.timestamp_granularity,
    processed_seconds: row.status === 'completed' ? (row.duration_seconds ?? row.processed_seconds) : row.processed_seconds,
    speed: row.status === 'processing' ? row.speed : null,
    eta_seconds: etaSeconds(row, nowMs),
    queue_position: live.queuePosition,
  };
}
