-- An active job whose handler stopped after a cancel request ends cancelled, with its state event.
-- $1 id text, $2 lease_token text, $3 now bigint, $4 channel text (the schema's NOTIFY channel)
-- Returns id, or no row when the lease was lost (LEASE_LOST).
WITH moved AS (
  UPDATE offload.jobs
     SET state = 'cancelled', finished_at = $3::bigint, updated_at = $3::bigint, lease_token = NULL, lease_until = NULL
   WHERE id = $1 AND state = 'active' AND lease_token = $2
  RETURNING id, state, attempt
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), $3::bigint FROM moved
  RETURNING job_id
), notified AS (
  SELECT pg_notify($4::text, '') FROM logged LIMIT 1
)
SELECT m.id FROM moved m LEFT JOIN notified ON true;
