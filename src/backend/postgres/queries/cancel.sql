-- Cancel a job: one that has not started (scheduled, queued, retrying) is cancelled at once; an
-- active one is flagged and its worker aborts it (acknowledge-cancel). At most one branch matches.
-- $1 id text, $2 now bigint
-- Returns one row: CANCELLED | CANCEL_REQUESTED | ALREADY_FINISHED, or CHANGED when the job moved
-- between states during the statement (the caller asks again); no row when there is no such job.
WITH pending AS (
  UPDATE offload.jobs SET state = 'cancelled', finished_at = $2::bigint, updated_at = $2::bigint
   WHERE id = $1 AND state IN ('scheduled', 'queued', 'retrying')
  RETURNING 'CANCELLED'::text AS status
), active AS (
  UPDATE offload.jobs SET cancel_requested = true, updated_at = $2::bigint
   WHERE id = $1 AND state = 'active'
  RETURNING 'CANCEL_REQUESTED'::text AS status
)
SELECT status FROM pending
UNION ALL
SELECT status FROM active
UNION ALL
SELECT CASE WHEN state IN ('succeeded', 'failed', 'cancelled') THEN 'ALREADY_FINISHED' ELSE 'CHANGED' END
  FROM offload.jobs
 WHERE id = $1 AND NOT EXISTS (SELECT FROM pending) AND NOT EXISTS (SELECT FROM active);
