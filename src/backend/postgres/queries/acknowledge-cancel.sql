-- An active job whose handler stopped after a cancel request ends cancelled, with its state event.
-- A repeat is OK and writes nothing: the row keeps the token of the run that was cancelled (see
-- fail.sql, which this follows).
-- $1 id text, $2 lease_token text, $3 now bigint
-- Returns id, or no row when the lease was lost (LEASE_LOST).
WITH held AS MATERIALIZED (
  SELECT id, state FROM offload.jobs
   WHERE id = $1 AND lease_token = $2 AND state IN ('active', 'cancelled')
     FOR UPDATE
), moved AS (
  UPDATE offload.jobs j
     SET state = 'cancelled', finished_at = $3::bigint, updated_at = $3::bigint, lease_until = NULL
    FROM held h
   WHERE j.id = h.id AND h.state = 'active'
  RETURNING j.id, j.state, j.attempt, j.queue
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, pg_backend_pid() % 32, count(*) FROM moved
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), $3::bigint FROM moved
  RETURNING job_id
)
SELECT h.id FROM held h;
