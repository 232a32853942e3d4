-- Record a failed attempt: retrying at $4 while attempts are left, else failed (dead letter).
-- The error is appended to the job's history, and the state event written.
-- $1 id text, $2 lease_token text, $3 error jsonb, $4 retry_at bigint (NULL for no retry), $5 now bigint,
-- $6 channel text (the schema's NOTIFY channel)
-- Returns the new state, or no row when the lease was lost (LEASE_LOST).
WITH moved AS (
  UPDATE offload.jobs
     SET state = CASE WHEN $4::bigint IS NOT NULL AND attempt < max_attempts THEN 'retrying' ELSE 'failed' END,
         run_at = CASE WHEN $4::bigint IS NOT NULL AND attempt < max_attempts THEN $4::bigint ELSE run_at END,
         finished_at = CASE WHEN $4::bigint IS NOT NULL AND attempt < max_attempts THEN NULL ELSE $5::bigint END,
         errors = errors || jsonb_build_array($3::jsonb),
         updated_at = $5::bigint, lease_token = NULL, lease_until = NULL
   WHERE id = $1 AND state = 'active' AND lease_token = $2
  RETURNING id, state, attempt
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), $5::bigint FROM moved
  RETURNING job_id
), notified AS (
  SELECT pg_notify($6::text, '') FROM logged LIMIT 1
)
SELECT m.state FROM moved m LEFT JOIN notified ON true;
