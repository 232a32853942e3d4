-- Scheduled and retrying jobs whose run time has come become claimable, up to $2 of them, oldest
-- first: the caller repeats until fewer come back (a step bounds one statement's time, for a
-- server's statement_timeout). Rows a claimer is staging at this moment are skipped (it stages
-- them itself).
-- $1 now bigint, $2 limit int
-- Returns the id of each job staged.
WITH moved AS (
  UPDATE offload.jobs SET state = 'queued', updated_at = $1::bigint
   WHERE id IN (SELECT id FROM offload.jobs
                 WHERE state IN ('scheduled', 'retrying') AND run_at <= $1::bigint
                 ORDER BY run_at
                 LIMIT $2::int
                   FOR UPDATE SKIP LOCKED)
  RETURNING id, attempt
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'queued', 'attempt', attempt), $1::bigint FROM moved ORDER BY id
  RETURNING job_id
)
SELECT m.id FROM moved m;
