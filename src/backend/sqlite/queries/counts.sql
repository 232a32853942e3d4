-- Jobs per queue and state, and the run time of the oldest queued job per queue.
SELECT queue, state, count(*) AS n, min(CASE WHEN state = 'queued' THEN run_at END) AS oldest
  FROM offload_jobs
 GROUP BY queue, state;
