-- Each job belongs to the API key that submitted it: `submitted_by` is a non-secret tag of that key (a prefix of
-- its SHA-256), never the key. NULL: submitted while keys were off (or before this migration); once keys are on,
-- only admin keys see such jobs.
ALTER TABLE jobs ADD COLUMN submitted_by TEXT;
-- GET /jobs of one key: its jobs, newest first.
CREATE INDEX jobs_by_submitter ON jobs (submitted_by, seq);
