-- Scheduled and retrying jobs whose run time has come become claimable. Rows a claimer is staging
-- at this moment are skipped (it stages them itself).
-- $1 now bigint
-- Returns the id of each job staged.
UPDATE offload.jobs SET state = 'queued', updated_at = $1::bigint
 WHERE id IN (SELECT id FROM offload.jobs
               WHERE state IN ('scheduled', 'retrying') AND run_at <= $1::bigint
                 FOR UPDATE SKIP LOCKED)
RETURNING id;
