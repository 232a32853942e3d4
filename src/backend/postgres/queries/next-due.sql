-- The earliest run time of a scheduled or retrying job in the given queues.
-- $1 queues text[]
-- Returns at (NULL when there is none).
SELECT min(run_at) AS at FROM offload.jobs
 WHERE state IN ('scheduled', 'retrying') AND queue = ANY ($1::text[]);
