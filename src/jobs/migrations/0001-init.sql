-- Jobs and their transcripts. Times are milliseconds since the Unix epoch.
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'canceled')),
  model TEXT NOT NULL,
  language TEXT,
  task TEXT NOT NULL CHECK (task IN ('transcribe', 'translate')),
  file_name TEXT,
  -- The stored upload, relative to the data directory.
  input_path TEXT NOT NULL,
  duration_seconds REAL,
  progress REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  run_at INTEGER NOT NULL,
  -- Fencing token of the worker that holds the job; every change after the claim names it.
  lease_owner TEXT,
  lease_until INTEGER,
  error_code TEXT,
  error_message TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER
);

CREATE INDEX jobs_claimable ON jobs (run_at, seq) WHERE status = 'pending';
CREATE INDEX jobs_by_status ON jobs (status, seq);
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'processing';

-- The canonical transcript of a completed job, stored once; every format is rendered from it on read.
CREATE TABLE transcripts (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
