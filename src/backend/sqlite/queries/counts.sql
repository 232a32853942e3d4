-- Jobs per queue and state, and the run time of the oldest queued job per queue.
-- Unfinished jobs are counted through the partial index of their state (one branch per index, so
-- each can use it): the work grows with the jobs waiting or running, not with those retained.
-- Finished jobs come from offload_finished_counts (migration 004), kept by triggers.
-- Returns queue, state, n, oldest (NULL unless state = 'queued'); no row for a count of 0.
SELECT queue, 'queued' AS state, count(*) AS n, min(run_at) AS oldest
  FROM offload_jobs WHERE state = 'queued' GROUP BY queue
UNION ALL
SELECT queue, state, count(*), NULL
  FROM offload_jobs WHERE state IN ('scheduled', 'retrying') GROUP BY queue, state
UNION ALL
SELECT queue, 'active', count(*), NULL
  FROM offload_jobs WHERE state = 'active' GROUP BY queue
UNION ALL
SELECT queue, state, n, NULL
  FROM offload_finished_counts WHERE n <> 0;
