-- Jobs per queue and state, and the run time of the oldest queued job per queue.
-- Unfinished jobs are counted through the partial index of their state (one branch per index, so
-- each can use it): the work grows with the jobs waiting or running, not with those retained.
-- Finished jobs come from finished_counts (migration 003), which every statement that moves a
-- job into or out of a final state keeps up to date.
-- No parameters.
-- Returns queue, state, n, oldest (NULL unless state = 'queued'); no row for a count of 0.
-- Counts are bigint (read as numbers): an int cast would fail past 2^31 jobs of one queue and state.
SELECT queue, 'queued' AS state, count(*) AS n, min(run_at) AS oldest
  FROM offload.jobs WHERE state = 'queued' GROUP BY queue
UNION ALL
SELECT queue, state, count(*), NULL
  FROM offload.jobs WHERE state IN ('scheduled', 'retrying') GROUP BY queue, state
UNION ALL
SELECT queue, 'active', count(*), NULL
  FROM offload.jobs WHERE state = 'active' GROUP BY queue
UNION ALL
SELECT queue, state, sum(n)::bigint, NULL
  FROM offload.finished_counts GROUP BY queue, state HAVING sum(n) <> 0;
