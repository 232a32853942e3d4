-- Cancel a job that has not started: scheduled, queued or retrying. A retrying job (or one
-- retried by hand) still carries the token of the run that failed; it dies here, or a
-- cancellation acknowledgement with it would pass for a repeat (lease-outcome.sql).
-- :id :now
-- Returns id when cancelled.
UPDATE offload_jobs SET state = 'cancelled', finished_at = :now, updated_at = :now, lease_token = NULL
 WHERE id = :id AND state IN ('scheduled', 'queued', 'retrying')
RETURNING id;
