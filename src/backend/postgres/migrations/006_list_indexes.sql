-- Offload schema for PostgreSQL, version 6: indexes for listing jobs by state, queue and task,
-- newest first (queries/list-jobs.sql; replay.sql's queue and task filters use them too).
-- Without them a filtered list walked the primary key from the newest job and read rows until it
-- had a page: as long as the table when few jobs match (a state, queue or task with no recent
-- job, or none at all), 1.3 s with 2,500,000 jobs for `offload jobs list --queue` of a queue
-- without one. With them, such a page reads its own rows.
--
-- Every state but queued and active: a job enters these indexes when it finishes, is delayed or
-- waits for a retry, not on the hot path of a job that runs at once (enqueue, claim, heartbeats),
-- where each index takes an entry at every new row version. Over every state they cost 20% of
-- enqueue throughput and a quarter of a drain's (a scratch measurement, 40,000 jobs, 4 runs each).
-- Queued and active jobs are listed through the partial indexes they have (claim, lease): the
-- backlog that matches at most, never the table.
--
-- Building them holds off writes to jobs for as long as it takes (a plain CREATE INDEX, in this
-- migration's transaction): 25-30 s for 2,500,000 jobs on 2 shared cores. On a large table, build
-- them beforehand without blocking, each with CREATE INDEX CONCURRENTLY and the same name,
-- columns and WHERE; this migration then finds them (IF NOT EXISTS) and builds nothing
-- (docs/postgres.md).
-- Rolling upgrade: processes still running version-5 code list as before, and write the new
-- indexes like the others; nothing else changes.
CREATE INDEX IF NOT EXISTS jobs_state_id ON offload.jobs (state, id)
  WHERE state IN ('scheduled', 'retrying', 'succeeded', 'failed', 'cancelled');
CREATE INDEX IF NOT EXISTS jobs_queue_state_id ON offload.jobs (queue, state, id)
  WHERE state IN ('scheduled', 'retrying', 'succeeded', 'failed', 'cancelled');
CREATE INDEX IF NOT EXISTS jobs_task_state_id ON offload.jobs (task, state, id)
  WHERE state IN ('scheduled', 'retrying', 'succeeded', 'failed', 'cancelled');
