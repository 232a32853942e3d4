-- The unfinished job holding an idempotency key, if any.
-- :key
SELECT id, state FROM offload_jobs
 WHERE key = :key AND state IN ('scheduled', 'queued', 'active', 'retrying');
