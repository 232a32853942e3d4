-- Extend the leases this worker still holds. Rows are locked in id order first, so a heartbeat
-- and a completion batch of the same worker can never deadlock on each other. Each lease finds
-- its row through the primary key (see complete.sql).
-- $1 ids text[], $2 tokens text[], $3 lease_until bigint
-- Returns id and cancel_requested of each lease still held; a lease not returned was lost.
WITH held AS MATERIALIZED (
  SELECT j.id
    FROM (SELECT * FROM unnest($1::text[], $2::text[]) AS l(id, token) ORDER BY id) l
   CROSS JOIN LATERAL (SELECT id, lease_token, state FROM offload.jobs WHERE id = l.id OFFSET 0) j
   WHERE j.lease_token = l.token AND j.state = 'active'
     FOR UPDATE OF j
)
UPDATE offload.jobs j SET lease_until = $3::bigint
  FROM held h
 WHERE j.id = h.id
RETURNING j.id, j.cancel_requested;
