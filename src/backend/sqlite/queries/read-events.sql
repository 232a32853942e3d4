-- Events after an id, optionally of one job, oldest first.
-- :job_id (NULL for all) :after_id :limit
SELECT * FROM offload_events
 WHERE id > :after_id AND (:job_id IS NULL OR job_id = :job_id)
 ORDER BY id
 LIMIT :limit;
