-- Offload schema for PostgreSQL, version 4: what one run of a job (one lease token) has put in its
-- history, so that the history stays bounded: the run's newest progress event (a new one replaces
-- it) and how many log lines it wrote (lines past the cap are not kept). See Backend.progress/log.
-- run_token names the run these belong to; a new run starts them over at its first write.
-- Columns without a volatile default: added without rewriting the table.
-- Rolling upgrade: processes still running version-3 code write every progress event and log line
-- as before, until they are restarted; nothing else depends on these columns.
ALTER TABLE offload.jobs
  ADD COLUMN run_token text COLLATE "C",
  ADD COLUMN run_progress_event bigint,
  ADD COLUMN run_log_lines integer NOT NULL DEFAULT 0;
