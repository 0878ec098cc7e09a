-- Interactive jobs (the OpenAI-compatible endpoints, whose clients wait for the answer) run ahead of batch jobs.
-- 1: interactive, 0: batch (every job before this column).
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0 CHECK (priority IN (0, 1));
-- The claim order is now priority first; the index keeps its name so that `INDEXED BY jobs_claimable` still holds.
DROP INDEX jobs_claimable;
CREATE INDEX jobs_claimable ON jobs (priority DESC, run_at, seq) WHERE status = 'pending';
