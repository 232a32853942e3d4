-- Delete up to $4 finished jobs past their retention, and their events with them.
-- The caller repeats until fewer than $4 are deleted, so one prune never holds huge locks.
-- $1 succeeded_before bigint, $2 failed_before bigint, $3 cancelled_before bigint, $4 batch int
-- Returns n, the number of jobs deleted.
WITH doomed AS (
  -- One walk of jobs_finished per state, oldest first, each stopping at $4 rows: the Limit above
  -- them pulls from the next state only while the one before came up short, so a step reads about
  -- the rows it deletes. Written as one OR, the three ranges were read whole for each step of $4:
  -- a bitmap of every job past retention (670,000 index entries per step of 5,000), or a scan of
  -- the table from its first page, across the pages earlier steps emptied. (Statistics that
  -- count far fewer jobs past retention than there are, from before a burst, can still make a
  -- walk here a bitmap and a sort: the next analyze sets it right.)
  SELECT id FROM (
    SELECT id FROM (SELECT id FROM offload.jobs WHERE state = 'succeeded' AND finished_at < $1::bigint
                     ORDER BY state, finished_at LIMIT $4::int FOR UPDATE SKIP LOCKED) succeeded
    UNION ALL
    SELECT id FROM (SELECT id FROM offload.jobs WHERE state = 'failed' AND finished_at < $2::bigint
                     ORDER BY state, finished_at LIMIT $4::int FOR UPDATE SKIP LOCKED) failed
    UNION ALL
    SELECT id FROM (SELECT id FROM offload.jobs WHERE state = 'cancelled' AND finished_at < $3::bigint
                     ORDER BY state, finished_at LIMIT $4::int FOR UPDATE SKIP LOCKED) cancelled
  ) past
  LIMIT $4::int
), gone AS (
  DELETE FROM offload.jobs WHERE id IN (SELECT id FROM doomed) RETURNING id, queue, state
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, pg_backend_pid() % 32, -count(*) FROM gone
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), events_gone AS (
  -- The ids as one array (an InitPlan), looked up in events_job one by one. Joined with `gone`,
  -- whose size the planner cannot know, the delete hashed it and read every event of every job
  -- (a sequential scan of events: 1.9 s per step with 2,000,000 events, for 15,000 rows).
  DELETE FROM offload.events WHERE job_id = SOME (ARRAY(SELECT id FROM gone))
)
SELECT count(*)::int AS n FROM gone;
