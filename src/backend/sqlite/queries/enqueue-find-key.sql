-- The unfinished job of a task holding an idempotency key, if any (keys are per task).
-- :task :key
SELECT id, state FROM offload_jobs
 WHERE task = :task AND key = :key AND state IN ('scheduled', 'queued', 'active', 'retrying');
