-- Insert a batch of new jobs that carry no idempotency key, and their first state events: one
-- statement, so all or none. A job is scheduled when its run time is after now, else queued. May
-- run on the caller's transaction (enqueue with tx), so it relies on no session state; the NOTIFY
-- is then delivered when the caller commits.
-- $1 ids text[], $2 tasks text[], $3 queues text[], $4 payloads text[] (JSON), $5 priorities int[],
-- $6 run_ats bigint[], $7 max_attempts int[], $8 owners text[], $9 now bigint, $10 channel text (the schema's NOTIFY channel)
-- Returns n, the number of jobs inserted. A duplicate id raises unique_violation (23505) and stores nothing.
WITH inserted AS (
  INSERT INTO offload.jobs (id, task, queue, state, payload, priority, run_at, max_attempts, owner, created_at, updated_at)
  SELECT i.id, i.task, i.queue, CASE WHEN i.run_at > $9::bigint THEN 'scheduled' ELSE 'queued' END,
         i.payload::json, i.priority, i.run_at, i.max_attempts, i.owner, $9::bigint, $9::bigint
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[])
         AS i(id, task, queue, payload, priority, run_at, max_attempts, owner)
  RETURNING id, state
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', 0), $9::bigint FROM inserted ORDER BY id
  RETURNING job_id
), notified AS (
  SELECT pg_notify($10::text, coalesce(current_setting('offload_notify.origin', true), '')) FROM logged LIMIT 1
)
SELECT count(*)::int AS n FROM logged LEFT JOIN notified ON true;
