-- Bulk replay of failed jobs. OR IGNORE skips a job whose idempotency key another
-- unfinished job of its task holds now, rather than aborting the whole replay. Of several failed
-- jobs of a task sharing a key, only the one that failed last is replayed, as on every backend.
-- :queue :task :since :until (each NULL for any) :now
-- Returns the id of each job queued.
UPDATE OR IGNORE offload_jobs
   SET state = 'queued', attempt = 0, run_at = :now, finished_at = NULL, cancel_requested = 0,
       worker = NULL, updated_at = :now
 WHERE id IN (
   SELECT id FROM (
     SELECT id, row_number() OVER (PARTITION BY key IS NULL, task, coalesce(key, id) ORDER BY finished_at DESC, id DESC) AS latest
       FROM offload_jobs
      WHERE state = 'failed'
        AND (:queue IS NULL OR queue = :queue)
        AND (:task IS NULL OR task = :task)
        AND (:since IS NULL OR finished_at >= :since)
        AND (:until IS NULL OR finished_at <= :until))
    WHERE latest = 1)
RETURNING id;
