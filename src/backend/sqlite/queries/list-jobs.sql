-- Newest first, with optional filters and an id cursor.
-- :state :queue :task :before (each NULL for any) :limit
SELECT * FROM offload_jobs
 WHERE (:state IS NULL OR state = :state)
   AND (:queue IS NULL OR queue = :queue)
   AND (:task IS NULL OR task = :task)
   AND (:before IS NULL OR id < :before)
 ORDER BY id DESC
 LIMIT :limit;
