-- Hand an active job back on graceful shutdown: queued again, the attempt not counted
-- (cancelled instead, if a cancel was requested meanwhile, and then it keeps the worker that ran
-- it, as every other way to a final state does).
-- :id :token :now
-- Returns id and the new state, or no row when the lease was lost.
UPDATE offload_jobs
   SET state = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END,
       attempt = CASE WHEN cancel_requested = 1 THEN attempt ELSE attempt - 1 END,
       finished_at = CASE WHEN cancel_requested = 1 THEN :now ELSE NULL END,
       worker = CASE WHEN cancel_requested = 1 THEN worker ELSE NULL END,
       lease_token = NULL, lease_until = NULL, updated_at = :now
 WHERE id = :id AND state = 'active' AND lease_token = :token
RETURNING id, state;
