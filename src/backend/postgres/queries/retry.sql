-- A failed or cancelled job back to queued with a fresh set of attempts; its errors are kept.
-- $1 id text, $2 now bigint
-- Returns id when queued; no row when the job is unfinished or missing (the caller tells which).
-- Raises unique_violation (23505) when another unfinished job now holds the job's key (KEY_IN_USE).
UPDATE offload.jobs
   SET state = 'queued', attempt = 0, run_at = $2::bigint, finished_at = NULL, cancel_requested = false,
       worker = NULL, updated_at = $2::bigint
 WHERE id = $1 AND state IN ('failed', 'cancelled')
RETURNING id;
