-- The state a job was left in by the lease that recorded its failure or cancellation: a finished
-- or retrying row keeps the token of the run that put it there, so a repeated acknowledgement
-- (its first reply lost) can be answered as the first was, without writing anything.
-- :id :token
-- Returns state, or no row when the job is active or has moved on since (token dead).
SELECT state FROM offload_jobs
 WHERE id = :id AND lease_token = :token AND state IN ('retrying', 'failed', 'cancelled');
