-- Mark an active job succeeded, if the caller still holds its lease.
-- :id :token :result :now
-- Returns id, or no row when the lease was lost (LEASE_LOST).
UPDATE offload_jobs
   SET state = 'succeeded', result = :result, finished_at = :now, updated_at = :now,
       lease_token = NULL, lease_until = NULL
 WHERE id = :id AND state = 'active' AND lease_token = :token
RETURNING id;
