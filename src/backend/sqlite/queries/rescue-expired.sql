-- Active jobs whose lease ran out (their worker died or hung) go back to queued, or to failed
-- when that was their last attempt, or to cancelled when a cancel was requested. Clearing the
-- token kills the old lease: a late acknowledgement from the lost worker is refused.
-- :now
-- Returns id and the new state of each rescued job.
UPDATE offload_jobs
   SET state = CASE WHEN cancel_requested = 1 THEN 'cancelled'
                    WHEN attempt < max_attempts THEN 'queued' ELSE 'failed' END,
       finished_at = CASE WHEN cancel_requested = 1 OR attempt >= max_attempts THEN :now ELSE NULL END,
       errors = json_insert(errors, '$[#]', json_object(
         'attempt', attempt, 'name', 'LeaseExpired',
         'message', 'lease expired: worker ' || coalesce(worker, '?') || ' stopped renewing it',
         'worker', worker, 'at', :now)),
       lease_token = NULL, lease_until = NULL, updated_at = :now
 WHERE state = 'active' AND lease_until < :now
RETURNING id, state;
