-- Insert a batch of new jobs that carry no idempotency key, in one statement: for bulk enqueue
-- this halves the cost of binding each row from JavaScript.
-- :jobs (JSON array of [id, task, queue, payload, priority, run_at, max_attempts, owner]) :now
INSERT INTO offload_jobs (id, task, queue, state, payload, priority, run_at, max_attempts, owner, created_at, updated_at)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2,
       CASE WHEN (j.value ->> 5) > :now THEN 'scheduled' ELSE 'queued' END,
       j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7, :now, :now
  FROM json_each(:jobs) AS j;
