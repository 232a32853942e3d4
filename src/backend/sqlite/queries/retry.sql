-- A failed or cancelled job back to queued with a fresh set of attempts; its history is then
-- trimmed by trim-history.sql and trim-events.sql in the same transaction (sqlite-backend.ts).
-- :id :now
-- Returns id when queued.
UPDATE offload_jobs
   SET state = 'queued', attempt = 0, run_at = :now, finished_at = NULL, cancel_requested = 0,
       worker = NULL, updated_at = :now
 WHERE id = :id AND state IN ('failed', 'cancelled')
RETURNING id;
