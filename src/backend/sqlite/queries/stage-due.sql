-- Scheduled and retrying jobs whose run time has come become claimable, at most :limit, oldest
-- first: a burst of 100,000 due at one instant was one 0.7 s write transaction, inside the claim
-- that met it (the claims that follow stage the rest). A claim stages only its own queues
-- (:queues, a JSON array), so another queue's burst does not stand before its own due jobs;
-- :queues NULL stages every queue.
-- :now :limit :queues
UPDATE offload_jobs SET state = 'queued', updated_at = :now
 WHERE id IN (SELECT id FROM offload_jobs
               WHERE state IN ('scheduled', 'retrying') AND run_at <= :now
                 AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
               ORDER BY run_at, id LIMIT :limit);
