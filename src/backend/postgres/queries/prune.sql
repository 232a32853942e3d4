-- Delete up to $4 finished jobs past their retention, and their events with them.
-- The caller repeats until fewer than $4 are deleted, so one prune never holds huge locks.
-- $1 succeeded_before bigint, $2 failed_before bigint, $3 cancelled_before bigint, $4 batch int
-- Returns n, the number of jobs deleted.
WITH doomed AS (
  SELECT id FROM offload.jobs
   WHERE (state = 'succeeded' AND finished_at < $1::bigint)
      OR (state = 'failed' AND finished_at < $2::bigint)
      OR (state = 'cancelled' AND finished_at < $3::bigint)
   LIMIT $4::int
     FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM offload.jobs WHERE id IN (SELECT id FROM doomed) RETURNING id, queue, state
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, pg_backend_pid() % 32, -count(*) FROM gone
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), events_gone AS (
  DELETE FROM offload.events WHERE job_id IN (SELECT id FROM gone)
)
SELECT count(*)::int AS n FROM gone;
