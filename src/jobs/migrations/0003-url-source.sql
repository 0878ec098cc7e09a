-- Jobs submitted as a URL: the worker downloads it to `input_path` before decoding.
ALTER TABLE jobs ADD COLUMN source_url TEXT;
-- The container's start time ffmpeg reported, in seconds; transcript times are on the media's own timeline.
ALTER TABLE jobs ADD COLUMN media_start_seconds REAL;
