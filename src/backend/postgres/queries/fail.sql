-- Record a failed attempt: retrying at $4 while attempts are left, else failed (dead letter);
-- cancelled instead when a cancel was requested while it ran (the handler failed before it was
-- aborted), so the request is not forgotten by the retry.
-- The error is appended to the job's history, and the state event written.
-- A repeat is answered as the first was and writes nothing: the row keeps the token of the run
-- that failed (every other lease operation requires state = 'active'), so a worker whose reply
-- was lost can send the failure again. The row is locked whether active or already moved by this
-- lease, and answered by the state it has once locked: a repeat waiting on the first one's
-- commit sees the committed state on the lock's recheck (see complete.sql).
-- $1 id text, $2 lease_token text, $3 error jsonb, $4 retry_at bigint (NULL for no retry), $5 now bigint,
-- Returns the state (retrying, failed or cancelled), or no row when the lease was lost (LEASE_LOST).
WITH held AS MATERIALIZED (
  SELECT id, state FROM offload.jobs
   WHERE id = $1 AND lease_token = $2 AND state IN ('active', 'retrying', 'failed', 'cancelled')
     FOR UPDATE
), moved AS (
  UPDATE offload.jobs j
     SET state = CASE WHEN j.cancel_requested THEN 'cancelled'
                      WHEN $4::bigint IS NOT NULL AND j.attempt < j.max_attempts THEN 'retrying' ELSE 'failed' END,
         run_at = CASE WHEN NOT j.cancel_requested AND $4::bigint IS NOT NULL AND j.attempt < j.max_attempts THEN $4::bigint ELSE j.run_at END,
         finished_at = CASE WHEN NOT j.cancel_requested AND $4::bigint IS NOT NULL AND j.attempt < j.max_attempts THEN NULL ELSE $5::bigint END,
         errors = j.errors || jsonb_build_array($3::jsonb),
         updated_at = $5::bigint, lease_until = NULL
    FROM held h
   WHERE j.id = h.id AND h.state = 'active'
  RETURNING j.id, j.state, j.attempt, j.queue
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, pg_backend_pid() % 32, count(*) FROM moved
   WHERE state <> 'retrying'
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), $5::bigint FROM moved
  RETURNING job_id
)
SELECT coalesce(m.state, h.state) AS state
  FROM held h LEFT JOIN moved m ON true;
