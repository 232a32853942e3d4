-- Mark a batch of active jobs succeeded, each only if its lease token still matches (fencing), and
-- write their state events. One statement for the whole batch; rows are locked in id order first
-- (see heartbeat.sql).
-- Each ack finds its row through the primary key (LATERAL ... OFFSET 0): the planner, trusting
-- stale statistics that say few jobs are active, would otherwise walk the partial lease index,
-- whose dead entries grow with every job done between two vacuums.
-- $1 ids text[], $2 tokens text[], $3 results text[] (JSON), $4 now bigint
-- Returns one row per ack in batch order: ord, ok (false means LEASE_LOST, nothing written).
-- A repeated ack is OK and writes nothing: a succeeded row keeps the token that completed it (every
-- other statement also checks state = 'active'), so a worker whose reply was lost can send it again.
-- Rows are locked whether active or succeeded, and answered by the state they have once locked:
-- a repeat that arrives while the first is still committing waits for it, and the lock's recheck
-- then sees the committed 'succeeded' (this statement's snapshot would still say 'active').
WITH acks AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS a(id, token, result, ord)
), held AS MATERIALIZED (
  SELECT j.id, j.state, a.token, a.result, a.ord
    FROM (SELECT * FROM acks ORDER BY id) a
   CROSS JOIN LATERAL (SELECT id, lease_token, state FROM offload.jobs WHERE id = a.id OFFSET 0) j
   WHERE j.lease_token = a.token AND j.state IN ('active', 'succeeded')
     FOR UPDATE OF j
), done AS (
  UPDATE offload.jobs j
     SET state = 'succeeded', result = h.result::json, finished_at = $4::bigint, updated_at = $4::bigint,
         lease_until = NULL
    FROM held h
   WHERE j.id = h.id AND j.lease_token = h.token AND h.state = 'active'
  RETURNING h.ord, j.id, j.attempt, j.queue
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, 'succeeded', pg_backend_pid() % 32, count(*) FROM done
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'succeeded', 'attempt', attempt), $4::bigint FROM done ORDER BY id
  RETURNING job_id
)
SELECT a.ord, d.ord IS NOT NULL OR h.state = 'succeeded' AS ok
  FROM acks a LEFT JOIN done d ON d.ord = a.ord LEFT JOIN held h ON h.ord = a.ord
 ORDER BY a.ord;
