-- The unfinished jobs holding any of these idempotency keys. May run on the caller's transaction,
-- hence the casts (see enqueue-keyed.sql).
-- $1 keys text[]
-- Returns the rows, with created = false.
SELECT false AS created, id, task, queue, state, payload::text AS payload, priority, run_at::float8 AS run_at, attempt, max_attempts,
       key, owner, worker, lease_until::float8 AS lease_until, cancel_requested, progress, progress_message,
       result::text AS result, errors::text AS errors, created_at::float8 AS created_at,
       started_at::float8 AS started_at, finished_at::float8 AS finished_at
  FROM offload.jobs
 WHERE key = ANY ($1::text[]) AND state IN ('scheduled', 'queued', 'active', 'retrying');
