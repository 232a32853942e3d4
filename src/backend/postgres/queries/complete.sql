-- Mark a batch of active jobs succeeded, each only if its lease token still matches (fencing).
-- One statement for the whole batch; rows are locked in id order first (see heartbeat.sql).
-- $1 ids text[], $2 tokens text[], $3 results text[] (JSON), $4 now bigint
-- Returns one row per ack in batch order: ord, ok (false means LEASE_LOST, nothing written).
WITH acks AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS a(id, token, result, ord)
), held AS MATERIALIZED (
  SELECT j.id, a.token, a.result, a.ord FROM offload.jobs j JOIN acks a ON a.id = j.id AND a.token = j.lease_token
   WHERE j.state = 'active'
   ORDER BY j.id
     FOR UPDATE OF j
), done AS (
  UPDATE offload.jobs j
     SET state = 'succeeded', result = h.result::json, finished_at = $4::bigint, updated_at = $4::bigint,
         lease_token = NULL, lease_until = NULL
    FROM held h
   WHERE j.id = h.id AND j.lease_token = h.token
  RETURNING h.ord
)
SELECT a.ord, d.ord IS NOT NULL AS ok
  FROM acks a LEFT JOIN done d ON d.ord = a.ord
 ORDER BY a.ord;
