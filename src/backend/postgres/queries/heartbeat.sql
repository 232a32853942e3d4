-- Extend the leases this worker still holds. Rows are locked in id order first, so a heartbeat
-- and a completion batch of the same worker can never deadlock on each other.
-- $1 ids text[], $2 tokens text[], $3 lease_until bigint
-- Returns id and cancel_requested of each lease still held; a lease not returned was lost.
WITH leases AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS l(id, token)
), held AS MATERIALIZED (
  SELECT j.id FROM offload.jobs j JOIN leases l ON l.id = j.id AND l.token = j.lease_token
   WHERE j.state = 'active'
   ORDER BY j.id
     FOR UPDATE OF j
)
UPDATE offload.jobs j SET lease_until = $3::bigint
  FROM held h
 WHERE j.id = h.id
RETURNING j.id, j.cancel_requested;
