-- Offload schema for SQLite, version 3: an idempotency key is held per task, as Sidekiq's unique
-- jobs are per class and BullMQ's job ids per queue. One key for every task made another task's
-- enqueue with the same key return this job, stored nothing, and typed its result wrongly.
DROP INDEX offload_jobs_key;
CREATE UNIQUE INDEX offload_jobs_key ON offload_jobs (task, key)
  WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'active', 'retrying');
