-- Idempotency keys of POST /jobs, the per-job event log behind GET /jobs/{id}/events, and the webhook outbox.
-- Times are milliseconds since the Unix epoch.

-- One row per (caller, key). The primary key is what makes a concurrent duplicate fail: the first request's
-- INSERT wins, and every other one sees its row. `response_status` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT,
  job_id TEXT,
  response_status INTEGER,
  response_body TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- What a job went through, in order; `seq` is the SSE event id, so a reconnect resumes after it.
CREATE TABLE job_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  type TEXT NOT NULL CHECK (type IN ('status', 'progress', 'segment')),
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);

-- A job's webhook target, set at submission.
CREATE TABLE job_webhooks (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  -- Set once the message for the job's final status is in the outbox (or that status was not asked for).
  done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX job_webhooks_open ON job_webhooks (job_id) WHERE done = 0;

-- The outbox: one row per event to deliver. `id` is the webhook-id, the same on every attempt.
-- `dedupe_key` keeps one message per job and event however often the event is observed.
CREATE TABLE webhook_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  event TEXT NOT NULL CHECK (event IN ('processing', 'completed', 'failed', 'canceled')),
  dedupe_key TEXT NOT NULL UNIQUE,
  url TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed', 'disabled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  lease_until INTEGER,
  last_status_code INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_by_job ON webhook_messages (job_id, seq);

CREATE TABLE webhook_attempts (
  message_id TEXT NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  PRIMARY KEY (message_id, attempt)
);

-- URLs that answered 410 Gone: nothing more is sent there until a redelivery enables them again.
CREATE TABLE webhook_disabled_urls (
  url TEXT PRIMARY KEY,
  disabled_at INTEGER NOT NULL
);
