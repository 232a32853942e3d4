-- Scheduled and retrying jobs whose run time has come become claimable.
-- :now
UPDATE offload_jobs SET state = 'queued', updated_at = :now
 WHERE state IN ('scheduled', 'retrying') AND run_at <= :now;
