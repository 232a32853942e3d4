-- Cancel a job that has not started: scheduled, queued or retrying.
-- :id :now
-- Returns id when cancelled.
UPDATE offload_jobs SET state = 'cancelled', finished_at = :now, updated_at = :now
 WHERE id = :id AND state IN ('scheduled', 'queued', 'retrying')
RETURNING id;
