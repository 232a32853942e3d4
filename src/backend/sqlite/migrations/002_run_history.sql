-- Offload schema for SQLite, version 2: what one run of a job (one lease token) has put in its
-- history, so that the history stays bounded: the run's newest progress event (a new one replaces
-- it) and how many log lines it wrote (lines past the cap are not kept). See Backend.progress/log.
-- run_token names the run these belong to; a new run starts them over at its first write.
ALTER TABLE offload_jobs ADD COLUMN run_token TEXT;
ALTER TABLE offload_jobs ADD COLUMN run_progress_event INTEGER;
ALTER TABLE offload_jobs ADD COLUMN run_log_lines INTEGER NOT NULL DEFAULT 0;
