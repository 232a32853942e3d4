-- Ask the worker running an active job to stop it; it acknowledges with acknowledge-cancel.
-- :id :now
-- Returns id when flagged.
UPDATE offload_jobs SET cancel_requested = 1, updated_at = :now
 WHERE id = :id AND state = 'active'
RETURNING id;
