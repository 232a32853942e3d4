-- Delete finished jobs past their retention, at most :limit; their events go with them (trigger).
-- Called until it deletes fewer: 100,000 jobs in one statement held the write lock (every other
-- process's writes) and this process's event loop for 0.7 s.
-- :succeeded_before :failed_before :cancelled_before :limit
DELETE FROM offload_jobs
 WHERE id IN (SELECT id FROM offload_jobs
               WHERE (state = 'succeeded' AND finished_at < :succeeded_before)
                  OR (state = 'failed' AND finished_at < :failed_before)
                  OR (state = 'cancelled' AND finished_at < :cancelled_before)
               LIMIT :limit);
