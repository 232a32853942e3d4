-- Events after an id, optionally of one job, oldest first. A pruned job has none: prune keeps the
-- newest event row whoever it belongs to (ids never go back; docs/decisions.md), and that row
-- stays in the global feed only.
-- :job_id (NULL for all) :after_id :limit
SELECT * FROM offload_events
 WHERE id > :after_id
   AND (:job_id IS NULL OR (job_id = :job_id AND EXISTS (SELECT 1 FROM offload_jobs WHERE id = :job_id)))
 ORDER BY id
 LIMIT :limit;
