-- One job's events after an id, oldest first, through offload_events_job (job_id, id). A
-- statement of its own: one shared with the global feed (`:job_id IS NULL OR job_id = :job_id`)
-- was planned once for both, walked the feed by id from `:after_id` and filtered by job, so a new
-- SSE stream (after id 0) read every retained event: 360 ms, the event loop stalled, with
-- 3,000,000 events (1,000,000 jobs kept by the default retention).
-- A pruned job has none: prune keeps the newest event row whoever it belongs to (ids never go
-- back; docs/decisions.md), and that row stays in the global feed only.
-- :job_id :after_id :limit
SELECT * FROM offload_events
 WHERE job_id = :job_id AND id > :after_id
   AND EXISTS (SELECT 1 FROM offload_jobs WHERE id = :job_id)
 ORDER BY id
 LIMIT :limit;
