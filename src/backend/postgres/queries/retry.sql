-- A failed or cancelled job back to queued with a fresh set of attempts; its errors are kept.
-- $1 id text, $2 now bigint
-- Returns id when queued; no row when the job is unfinished or missing (the caller tells which).
-- Raises unique_violation (23505) when another unfinished job now holds the job's key (KEY_IN_USE).
WITH held AS MATERIALIZED (
  SELECT id, state FROM offload.jobs WHERE id = $1 AND state IN ('failed', 'cancelled') FOR UPDATE
), moved AS (
  UPDATE offload.jobs j
     SET state = 'queued', attempt = 0, run_at = $2::bigint, finished_at = NULL, cancel_requested = false,
         worker = NULL, updated_at = $2::bigint
    FROM held h
   WHERE j.id = h.id
  RETURNING j.id, j.queue, h.state AS was
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, was, pg_backend_pid() % 32, -count(*) FROM moved
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'queued', 'attempt', 0), $2::bigint FROM moved
  RETURNING job_id
)
SELECT m.id FROM moved m;
