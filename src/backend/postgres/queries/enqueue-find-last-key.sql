-- The newest job that ever held each of these (task, idempotency key) pairs, in any state. For the rare race
-- where a key's holder committed during the enqueue statement (so it was skipped) and then
-- finished before enqueue-find-key looked: that holder is still the answer, as if this enqueue
-- had happened while it held the key. No index covers finished jobs' keys, so this scans; it runs
-- only in that race. May run on the caller's transaction, hence the casts (see enqueue-keyed.sql).
-- $1 tasks text[], $2 keys text[] (pairs)
-- Returns one row per pair found, with created = false.
SELECT DISTINCT ON (task, key) false AS created, id, task, queue, state, payload::text AS payload, priority, run_at::float8 AS run_at,
       attempt, max_attempts, key, owner, worker, lease_until::float8 AS lease_until, cancel_requested, progress,
       progress_message, result::text AS result, errors::text AS errors, created_at::float8 AS created_at,
       started_at::float8 AS started_at, finished_at::float8 AS finished_at
  FROM offload.jobs
 WHERE (task, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
 ORDER BY task, key, id DESC;
