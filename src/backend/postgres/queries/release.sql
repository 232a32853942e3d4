-- Hand active jobs back on graceful shutdown: queued again with the attempt not counted, or
-- cancelled when a cancel was requested meanwhile. Locked in id order (see heartbeat.sql).
-- $1 ids text[], $2 tokens text[], $3 now bigint
-- Returns the id of each job released; a lease not returned was lost.
WITH leases AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS l(id, token)
), held AS MATERIALIZED (
  SELECT j.id, l.token FROM offload.jobs j JOIN leases l ON l.id = j.id AND l.token = j.lease_token
   WHERE j.state = 'active'
   ORDER BY j.id
     FOR UPDATE OF j
)
UPDATE offload.jobs j
   SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
       attempt = CASE WHEN j.cancel_requested THEN j.attempt ELSE j.attempt - 1 END,
       finished_at = CASE WHEN j.cancel_requested THEN $3::bigint ELSE NULL END,
       worker = NULL, lease_token = NULL, lease_until = NULL, updated_at = $3::bigint
  FROM held h
 WHERE j.id = h.id AND j.lease_token = h.token
RETURNING j.id;
