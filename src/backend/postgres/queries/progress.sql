-- Record progress of an active job and its progress event, if the caller holds the lease. Progress
-- is a gauge: the run's newest progress event replaces its previous one (migration 004). The row
-- lock comes first, as in log.sql: event ids are taken at insert, and one taken before another of
-- the same job must also commit before it.
-- $1 id text, $2 lease_token text, $3 progress float8, $4 message text (NULL for none), $5 now bigint,
-- Returns the event id, or no row when the lease was lost (LEASE_LOST).
WITH held AS (
  SELECT id, CASE WHEN run_token = $2 THEN run_progress_event END AS previous
    FROM offload.jobs WHERE id = $1 AND state = 'active' AND lease_token = $2 FOR NO KEY UPDATE
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'progress', jsonb_build_object('progress', $3::float8, 'message', $4::text), $5::bigint FROM held
  RETURNING id, job_id
), updated AS (
  UPDATE offload.jobs j SET progress = $3::float8, progress_message = $4::text, updated_at = $5::bigint,
         run_log_lines = CASE WHEN j.run_token = $2 THEN j.run_log_lines ELSE 0 END,
         run_token = $2, run_progress_event = l.id
    FROM logged l WHERE j.id = l.job_id
), replaced AS (
  DELETE FROM offload.events WHERE id = (SELECT previous FROM held)
)
SELECT l.id FROM logged l;
