-- Delete finished jobs past their retention; their events go with them (trigger).
-- :succeeded_before :failed_before :cancelled_before
DELETE FROM offload_jobs
 WHERE (state = 'succeeded' AND finished_at < :succeeded_before)
    OR (state = 'failed' AND finished_at < :failed_before)
    OR (state = 'cancelled' AND finished_at < :cancelled_before);
