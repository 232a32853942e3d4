-- The next claimable jobs of one queue, in claim order. Run once per queue, inside the claim's
-- transaction; the caller merges the queues' candidates and claims the best :limit of them.
-- (One query over "queue IN (...)" would sort every queued row each time; this one walks the
-- offload_jobs_claim index and stops after :limit rows.)
-- :queue :limit
SELECT id, priority, run_at FROM offload_jobs
 WHERE state = 'queued' AND queue = :queue
 ORDER BY priority DESC, run_at, id
 LIMIT :limit;
