-- Move the chosen queued jobs to active. Each gets its own random lease token (the fencing
-- token) and attempt + 1. The state guard makes a job claimed meanwhile impossible to take twice.
-- :ids (JSON array of job ids, from claim-candidates) :worker :lease_until :now
-- Returns the claimed rows, in no particular order (the caller sorts).
UPDATE offload_jobs
   SET state = 'active', attempt = attempt + 1, lease_token = lower(hex(randomblob(16))),
       lease_until = :lease_until, worker = :worker, started_at = :now, updated_at = :now,
       cancel_requested = 0
 WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'queued'
RETURNING *;
