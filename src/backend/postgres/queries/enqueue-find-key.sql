-- The unfinished jobs holding any of these (task, idempotency key) pairs. May run on the caller's transaction,
-- hence the casts (see enqueue-keyed.sql).
-- $1 tasks text[], $2 keys text[] (pairs)
-- Returns the rows, with created = false.
SELECT false AS created, id, task, queue, state, payload::text AS payload, priority, run_at::float8 AS run_at, attempt, max_attempts,
       key, owner, worker, lease_until::float8 AS lease_until, cancel_requested, progress, progress_message,
       result::text AS result, errors::text AS errors, created_at::float8 AS created_at,
       started_at::float8 AS started_at, finished_at::float8 AS finished_at
  FROM offload.jobs
 WHERE (task, key) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND state IN ('scheduled', 'queued', 'active', 'retrying');
