-- The earliest run time of a scheduled or retrying job in one queue (run once per queue).
-- :queue
SELECT run_at AS at FROM offload_jobs
 WHERE queue = :queue AND state IN ('scheduled', 'retrying')
 ORDER BY run_at
 LIMIT 1;
