-- Cancel a job: one that has not started (scheduled, queued, retrying) is cancelled at once; an
-- active one is flagged and its worker aborts it (acknowledge-cancel). At most one branch matches.
-- Only the first branch changes the state, so only it writes a state event. It also kills the
-- token a retrying job (or one retried by hand) still carries from the run that failed: else a
-- cancellation acknowledgement with that token would pass for a repeat (acknowledge-cancel.sql).
-- $1 id text, $2 now bigint
-- Returns one row: CANCELLED | CANCEL_REQUESTED | ALREADY_FINISHED, or CHANGED when the job moved
-- between states during the statement (the caller asks again); no row when there is no such job.
WITH pending AS (
  UPDATE offload.jobs SET state = 'cancelled', finished_at = $2::bigint, updated_at = $2::bigint, lease_token = NULL
   WHERE id = $1 AND state IN ('scheduled', 'queued', 'retrying')
  RETURNING id, attempt, queue, 'CANCELLED'::text AS status
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, 'cancelled', pg_backend_pid() % 32, count(*) FROM pending
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), active AS (
  UPDATE offload.jobs SET cancel_requested = true, updated_at = $2::bigint
   WHERE id = $1 AND state = 'active'
  RETURNING 'CANCEL_REQUESTED'::text AS status
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'cancelled', 'attempt', attempt), $2::bigint FROM pending
  RETURNING job_id
)
SELECT status FROM pending
UNION ALL
SELECT status FROM active
UNION ALL
SELECT CASE WHEN state IN ('succeeded', 'failed', 'cancelled') THEN 'ALREADY_FINISHED' ELSE 'CHANGED' END
  FROM offload.jobs
 WHERE id = $1 AND NOT EXISTS (SELECT FROM pending) AND NOT EXISTS (SELECT FROM active);
