/**
 * @module http/job-view
 * The API's view of a job record: what `GET /jobs/{id}` and friends return.
 */
import type { JobRow } from '../jobs/job-store.ts';
import type { Schemas } from './operation-types.ts';

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

export function jobView(row: JobRow, live: JobLive = { queuePosition: null }, nowMs?: number): Schemas['Job'] {
  const terminal = row.status === 'completed' || row.status === 'failed' || row.status === 'canceled';
  return {
    id: row.id,
    status: row.status,
    progress: row.status === 'completed' ? 100 : row.progress,
    model: row.model,
    language: row.language,
    task: row.task,
    file_name: row.file_name,
    duration_seconds: row.duration_seconds,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    error: row.error_code !== null && row.status !== 'completed' ? { code: row.error_code, message: row.error_message ?? '' } : null,
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
