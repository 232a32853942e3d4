-- Move up to :limit queued jobs of the given queues to active, in priority, run time, id order.
-- Each claimed row gets its own random lease token (the fencing token) and attempt + 1.
-- :queues (JSON array of names) :limit :worker :lease_until :now
-- Returns the claimed rows, in no particular order (the caller sorts).
UPDATE offload_jobs
   SET state = 'active', attempt = attempt + 1, lease_token = lower(hex(randomblob(16))),
       lease_until = :lease_until, worker = :worker, started_at = :now, updated_at = :now,
       cancel_requested = 0
 WHERE id IN (SELECT id FROM offload_jobs
               WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(:queues))
               ORDER BY priority DESC, run_at, id
               LIMIT :limit)
RETURNING *;
