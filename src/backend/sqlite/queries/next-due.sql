-- The earliest run time of a scheduled or retrying job in the given queues.
-- :queues (JSON array)
SELECT min(run_at) AS at FROM offload_jobs
 WHERE state IN ('scheduled', 'retrying') AND queue IN (SELECT value FROM json_each(:queues));
