-- An active job whose handler stopped after a cancel request ends cancelled.
-- $1 id text, $2 lease_token text, $3 now bigint
-- Returns id, or no row when the lease was lost (LEASE_LOST).
UPDATE offload.jobs
   SET state = 'cancelled', finished_at = $3::bigint, updated_at = $3::bigint, lease_token = NULL, lease_until = NULL
 WHERE id = $1 AND state = 'active' AND lease_token = $2
RETURNING id;
