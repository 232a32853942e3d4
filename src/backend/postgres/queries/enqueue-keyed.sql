-- Insert a batch of new jobs, some with idempotency keys, and the first state events of those
-- inserted: one statement, so all or none. A job whose key an unfinished job of its task holds is
-- not inserted (ON CONFLICT on the partial unique index, per task and key); the same task and key
-- twice in the batch inserts the first only (rows of one key go in batch order).
-- Rows go in task and key order: an insert that meets a key another open transaction has just taken waits
-- for that transaction, so two batches taking shared keys in different orders would each wait
-- for the other (deadlock, 40P01). In one order, one of them simply waits.
-- May run on the caller's transaction (enqueue with tx): columns are cast to text and float8 so
-- any driver returns the same shapes.
-- $1 ids text[], $2 tasks text[], $3 queues text[], $4 payloads text[] (JSON), $5 priorities int[],
-- $6 run_ats bigint[], $7 max_attempts int[], $8 keys text[] (NULL for none), $9 owners text[], $10 now bigint,
-- $11 channel text (the schema's NOTIFY channel)
-- Returns the inserted rows (created = true) and the unfinished rows that already held one of the
-- keys (created = false). A key held by a transaction that committed during this statement may be
-- in neither; the caller looks it up again (enqueue-find-key). A duplicate id raises 23505.
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[], $9::text[])
         WITH ORDINALITY AS i(id, task, queue, payload, priority, run_at, max_attempts, key, owner, ord)
), inserted AS (
  INSERT INTO offload.jobs (id, task, queue, state, payload, priority, run_at, max_attempts, key, owner, created_at, updated_at)
  SELECT id, task, queue, CASE WHEN run_at > $10::bigint THEN 'scheduled' ELSE 'queued' END,
         payload::json, priority, run_at, max_attempts, key, owner, $10::bigint, $10::bigint
    FROM input ORDER BY task, key, ord
  ON CONFLICT (task, key) WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'active', 'retrying') DO NOTHING
  RETURNING *
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', 0), $10::bigint FROM inserted ORDER BY id
  RETURNING job_id
), notified AS (
  SELECT pg_notify($11::text, coalesce(current_setting('offload_notify.origin', true), '')) FROM logged LIMIT 1
), held AS (
  SELECT * FROM offload.jobs
   WHERE (task, key) IN (SELECT task, key FROM input WHERE key IS NOT NULL) AND state IN ('scheduled', 'queued', 'active', 'retrying')
), found AS (
  SELECT true AS created, * FROM inserted
  UNION ALL
  SELECT false AS created, * FROM held
)
SELECT created, id, task, queue, state, payload::text AS payload, priority, run_at::float8 AS run_at, attempt, max_attempts,
       key, owner, worker, lease_until::float8 AS lease_until, cancel_requested, progress, progress_message,
       result::text AS result, errors::text AS errors, created_at::float8 AS created_at,
       started_at::float8 AS started_at, finished_at::float8 AS finished_at
  FROM found LEFT JOIN notified ON true;
