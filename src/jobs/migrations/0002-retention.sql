-- Retention: how long a finished job (and its transcript and files) is kept. Filled at submission from the
-- job's own value or the server default; rows from before this migration get the default at the first sweep.
ALTER TABLE jobs ADD COLUMN retention_seconds INTEGER CHECK (retention_seconds IS NULL OR retention_seconds >= 1);

-- The sweep looks up finished jobs by the time they expire.
CREATE INDEX jobs_expiry ON jobs (completed_at + retention_seconds * 1000) WHERE status IN ('completed', 'failed', 'canceled');
