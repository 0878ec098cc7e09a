-- The schema of the SQLite migrations 0001 to 0007 in one step, in PostgreSQL's types: times are milliseconds
-- since the Unix epoch (BIGINT), `seq` an identity, fractional values double precision. The queue itself lives
-- in pg-boss's schema; `jobs` stays the record clients read.
CREATE TABLE jobs (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'canceled')),
  model TEXT NOT NULL,
  language TEXT,
  task TEXT NOT NULL CHECK (task IN ('transcribe', 'translate')),
  file_name TEXT,
  input_path TEXT NOT NULL,
  duration_seconds DOUBLE PRECISION,
  progress DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  run_at BIGINT NOT NULL,
  -- Fencing token of the worker that holds the job: its dispatcher's owner and the pg-boss attempt.
  lease_owner TEXT,
  lease_until BIGINT,
  error_code TEXT,
  error_message TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT,
  completed_at BIGINT,
  retention_seconds BIGINT CHECK (retention_seconds IS NULL OR retention_seconds >= 1),
  source_url TEXT,
  media_start_seconds DOUBLE PRECISION,
  timestamp_granularity TEXT CHECK (timestamp_granularity IN ('segment', 'word')),
  processed_seconds DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (processed_seconds >= 0),
  speed DOUBLE PRECISION CHECK (speed > 0),
  priority INTEGER NOT NULL DEFAULT 0 CHECK (priority IN (0, 1)),
  submitted_by TEXT
);

CREATE INDEX jobs_claimable ON jobs (priority DESC, run_at, seq) WHERE status = 'pending';
CREATE INDEX jobs_by_status ON jobs (status, seq);
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'processing';
CREATE INDEX jobs_expiry ON jobs ((completed_at + retention_seconds * 1000)) WHERE status IN ('completed', 'failed', 'canceled');
CREATE INDEX jobs_by_submitter ON jobs (submitted_by, seq);

CREATE TABLE transcripts (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT,
  job_id TEXT,
  response_status INTEGER,
  response_body TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE job_events (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  type TEXT NOT NULL CHECK (type IN ('status', 'progress', 'segment')),
  data TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);

CREATE TABLE job_webhooks (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX job_webhooks_open ON job_webhooks (job_id) WHERE done = 0;

CREATE TABLE webhook_messages (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  event TEXT NOT NULL CHECK (event IN ('processing', 'completed', 'failed', 'canceled')),
  dedupe_key TEXT NOT NULL UNIQUE,
  url TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed', 'disabled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT,
  lease_until BIGINT,
  last_status_code INTEGER,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_by_job ON webhook_messages (job_id, seq);

CREATE TABLE webhook_attempts (
  message_id TEXT NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms BIGINT NOT NULL,
  PRIMARY KEY (message_id, attempt)
);

CREATE TABLE webhook_disabled_urls (
  url TEXT PRIMARY KEY,
  disabled_at BIGINT NOT NULL
);
