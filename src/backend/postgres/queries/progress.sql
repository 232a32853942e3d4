-- Record progress of an active job and its progress event, if the caller holds the lease.
-- $1 id text, $2 lease_token text, $3 progress float8, $4 message text (NULL for none), $5 now bigint,
-- $6 channel text (the schema's NOTIFY channel)
-- Returns the event id, or no row when the lease was lost (LEASE_LOST).
WITH updated AS (
  UPDATE offload.jobs SET progress = $3::float8, progress_message = $4::text, updated_at = $5::bigint
   WHERE id = $1 AND state = 'active' AND lease_token = $2
  RETURNING id
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'progress', jsonb_build_object('progress', $3::float8, 'message', $4::text), $5::bigint FROM updated
  RETURNING id
), notified AS (
  SELECT pg_notify($6::text, coalesce(current_setting('offload_notify.origin', true), '') || ' quiet') FROM logged LIMIT 1
)
SELECT l.id FROM logged l LEFT JOIN notified ON true;
