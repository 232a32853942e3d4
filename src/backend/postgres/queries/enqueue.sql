-- Insert a batch of new jobs that carry no idempotency key: one statement, so all or none.
-- A job is scheduled when its run time is after now, else queued. May run on the caller's
-- transaction (enqueue with tx), so it relies on no session state.
-- $1 ids text[], $2 tasks text[], $3 queues text[], $4 payloads text[] (JSON), $5 priorities int[],
-- $6 run_ats bigint[], $7 max_attempts int[], $8 owners text[], $9 now bigint
-- Returns no rows. A duplicate id raises unique_violation (23505) and stores nothing.
INSERT INTO offload.jobs (id, task, queue, state, payload, priority, run_at, max_attempts, owner, created_at, updated_at)
SELECT i.id, i.task, i.queue, CASE WHEN i.run_at > $9::bigint THEN 'scheduled' ELSE 'queued' END,
       i.payload::json, i.priority, i.run_at, i.max_attempts, i.owner, $9::bigint, $9::bigint
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[])
       AS i(id, task, queue, payload, priority, run_at, max_attempts, owner);
