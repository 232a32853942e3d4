-- Jobs per queue and state, and the run time of the oldest queued job per queue.
-- No parameters.
-- Returns queue, state, n, oldest (NULL unless state = 'queued').
SELECT queue, state, count(*)::int AS n, min(run_at) FILTER (WHERE state = 'queued') AS oldest
  FROM offload.jobs
 GROUP BY queue, state;
