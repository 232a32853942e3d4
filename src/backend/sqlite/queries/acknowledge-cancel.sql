-- An active job whose handler stopped after a cancel request ends cancelled.
-- :id :token :now
-- Returns id, or no row when the lease was lost or this was acknowledged before (the row keeps its
-- token: lease-outcome.sql).
UPDATE offload_jobs
   SET state = 'cancelled', finished_at = :now, updated_at = :now, lease_until = NULL
 WHERE id = :id AND state = 'active' AND lease_token = :token
RETURNING id;
