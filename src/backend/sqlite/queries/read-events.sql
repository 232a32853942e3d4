-- The global feed: events after an id, oldest first. (One job's events: read-job-events.sql.)
-- :after_id :limit
SELECT * FROM offload_events
 WHERE id > :after_id
 ORDER BY id
 LIMIT :limit;
