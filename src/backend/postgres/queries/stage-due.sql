-- Scheduled and retrying jobs whose run time has come become claimable, at most $3, oldest first
-- (a burst of 100,000 due at one instant was one 2.2 s statement, and the claim that ran it
-- started its first job that late; the claims that follow stage the rest). A claim stages only
-- its own queues ($3), so another queue's burst does not stand before its own due jobs; $3 NULL
-- stages every queue. Rows a claimer is staging at this moment are skipped (it stages them itself).
-- $1 now bigint, $2 limit int, $3 queues text[] or NULL, $4 channel text (the schema's NOTIFY channel)
-- Returns the id of each job staged.
WITH moved AS (
  UPDATE offload.jobs SET state = 'queued', updated_at = $1::bigint
   WHERE id IN (SELECT id FROM offload.jobs
                 WHERE state IN ('scheduled', 'retrying') AND run_at <= $1::bigint
                   AND ($3::text[] IS NULL OR queue = ANY ($3::text[]))
                 ORDER BY run_at, id LIMIT $2::int
                   FOR UPDATE SKIP LOCKED)
  RETURNING id, attempt
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'queued', 'attempt', attempt), $1::bigint FROM moved ORDER BY id
  RETURNING job_id
), notified AS (
  SELECT pg_notify($4::text, coalesce(current_setting('offload_notify.origin', true), '')) FROM logged LIMIT 1
)
SELECT m.id FROM moved m LEFT JOIN notified ON true;
