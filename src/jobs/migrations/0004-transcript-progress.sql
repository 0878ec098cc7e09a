-- Word timestamps asked for at submission, and how far and how fast the transcription of a job has come.
-- NULL granularity: words when the model gives them (the behaviour before this column).
ALTER TABLE jobs ADD COLUMN timestamp_granularity TEXT CHECK (timestamp_granularity IN ('segment', 'word'));
-- Seconds of audio transcribed so far.
ALTER TABLE jobs ADD COLUMN processed_seconds REAL NOT NULL DEFAULT 0 CHECK (processed_seconds >= 0);
-- Seconds of audio transcribed per second of wall time in the current attempt; NULL until the first window.
ALTER TABLE jobs ADD COLUMN speed REAL CHECK (speed > 0);
