-- Record progress of an active job, if the caller still holds its lease.
-- :id :token :progress :message :now
-- Returns id, or no row when the lease was lost.
UPDATE offload_jobs SET progress = :progress, progress_message = :message, updated_at = :now
 WHERE id = :id AND state = 'active' AND lease_token = :token
RETURNING id;
