-- A failed or cancelled job back to queued with a fresh set of attempts; its history is kept,
-- trimmed to the errors of its newest $3 attempts and its newest $4 events besides this one's
-- (HistoryKept, backend.ts).
-- $1 id text, $2 now bigint, $3 errors kept int, $4 events kept int
-- Returns id when queued; no row when the job is unfinished or missing (the caller tells which).
-- Raises unique_violation (23505) when another unfinished job now holds the job's key (KEY_IN_USE).
WITH held AS MATERIALIZED (
  SELECT id, state, jsonb_array_length(errors) > $3::int AS over FROM offload.jobs
   WHERE id = $1 AND state IN ('failed', 'cancelled') FOR UPDATE
), moved AS (
  UPDATE offload.jobs j
     SET state = 'queued', attempt = 0, run_at = $2::bigint, finished_at = NULL, cancel_requested = false,
         worker = NULL, updated_at = $2::bigint, errors = CASE WHEN jsonb_array_length(j.errors) <= $3::int THEN j.errors ELSE coalesce(
           (SELECT jsonb_agg(e.error ORDER BY e.n) FROM jsonb_array_elements(j.errors) WITH ORDINALITY AS e(error, n)
             WHERE e.n > jsonb_array_length(j.errors) - $3::int), '[]'::jsonb) END
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
), trimmed AS (
  -- Every part of a statement reads one snapshot: the event `logged` adds is not among these.
  -- Only once its errors were over their cap (HistoryKept): finding the cut reads the job's events.
  DELETE FROM offload.events e
   USING held h
   WHERE h.over AND e.job_id = h.id
     AND e.id <= (SELECT x.id FROM offload.events x WHERE x.job_id = h.id ORDER BY x.id DESC OFFSET $4::int LIMIT 1)
)
SELECT m.id FROM moved m;
