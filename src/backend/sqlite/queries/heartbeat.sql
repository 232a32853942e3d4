-- Extend a lease this worker still holds.
-- :id :token :lease_until
-- Returns cancel_requested, or no row when the lease was lost.
UPDATE offload_jobs SET lease_until = :lease_until
 WHERE id = :id AND state = 'active' AND lease_token = :token
RETURNING cancel_requested;
