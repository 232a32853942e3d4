-- Record a failed attempt: retrying at :retry_at while attempts are left, else failed; cancelled
-- instead when a cancel was requested while it ran (the handler failed before it was aborted), so
-- the request is not forgotten by the retry.
-- :id :token :error (JSON object) :retry_at (NULL for no retry) :now
-- Returns the new state, or no row when the lease was lost or the failure was recorded before
-- (lease-outcome.sql tells them apart). The row keeps its token, so a repeat can be recognised;
-- every other lease operation requires state = 'active'.
UPDATE offload_jobs
   SET state = CASE WHEN cancel_requested = 1 THEN 'cancelled'
                    WHEN :retry_at IS NOT NULL AND attempt < max_attempts THEN 'retrying' ELSE 'failed' END,
       run_at = CASE WHEN cancel_requested = 0 AND :retry_at IS NOT NULL AND attempt < max_attempts THEN :retry_at ELSE run_at END,
       finished_at = CASE WHEN cancel_requested = 0 AND :retry_at IS NOT NULL AND attempt < max_attempts THEN NULL ELSE :now END,
       errors = json_insert(errors, '$[#]', json(:error)),
       updated_at = :now, lease_until = NULL
 WHERE id = :id AND state = 'active' AND lease_token = :token
RETURNING state;
