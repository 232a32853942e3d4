-- Offload schema for PostgreSQL, version 5: an idempotency key is held per task, as Sidekiq's
-- unique jobs are per class and BullMQ's job ids per queue. One key for every task made another
-- task's enqueue with the same key return this job, stored nothing, and typed its result wrongly.
-- Rolling upgrade: processes still running version-4 code enqueue with ON CONFLICT (key), which
-- no longer names a unique index: their keyed enqueues fail until they are restarted.
DROP INDEX offload.jobs_key;
CREATE UNIQUE INDEX jobs_key ON offload.jobs (task, key)
  WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'active', 'retrying');
