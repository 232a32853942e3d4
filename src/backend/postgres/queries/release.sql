-- Hand active jobs back on graceful shutdown: queued again with the attempt not counted, or
-- cancelled when a cancel was requested meanwhile, with their state events. Locked in id order,
-- each found through the primary key (see heartbeat.sql).
-- $1 ids text[], $2 tokens text[], $3 now bigint
-- Returns the id, token and new state (queued or cancelled) of each lease released; a lease not
-- returned was lost. A job ended
-- cancelled keeps the worker that ran it, as every other way to a final state does.
WITH held AS MATERIALIZED (
  SELECT j.id, l.token
    FROM (SELECT * FROM unnest($1::text[], $2::text[]) AS l(id, token) ORDER BY id) l
   CROSS JOIN LATERAL (SELECT id, lease_token, state FROM offload.jobs WHERE id = l.id OFFSET 0) j
   WHERE j.lease_token = l.token AND j.state = 'active'
     FOR UPDATE OF j
), moved AS (
  UPDATE offload.jobs j
     SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
         attempt = CASE WHEN j.cancel_requested THEN j.attempt ELSE j.attempt - 1 END,
         finished_at = CASE WHEN j.cancel_requested THEN $3::bigint ELSE NULL END,
         worker = CASE WHEN j.cancel_requested THEN j.worker ELSE NULL END,
         lease_token = NULL, lease_until = NULL, updated_at = $3::bigint
    FROM held h
   WHERE j.id = h.id AND j.lease_token = h.token
  RETURNING j.id, h.token, j.state, j.attempt, j.queue
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, pg_backend_pid() % 32, count(*) FROM moved
   WHERE state = 'cancelled'
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), $3::bigint FROM moved ORDER BY id
  RETURNING job_id
)
SELECT m.id, m.token, m.state FROM moved m;
