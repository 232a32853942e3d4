-- The jobs that a claim took, for a worker that never got the claim's reply (its connection died
-- after the commit): every job still active under a lease of that claim, found by the claim's
-- lease_until (the lease index) and the base its lease tokens start with (claim.sql). Changes
-- nothing: the claim's own changes are in the rows already.
-- $1 lease_until bigint, $2 token base text
-- Returns the rows, in no particular order (the caller sorts).
SELECT id, task, queue, state, payload, priority, run_at, attempt, max_attempts, key, owner, worker, lease_token, lease_until, cancel_requested, progress, progress_message, result, errors, created_at, updated_at, started_at, finished_at
  FROM offload.jobs
 WHERE state = 'active' AND lease_until = $1::bigint AND starts_with(lease_token, $2::text);
