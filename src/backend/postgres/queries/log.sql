-- Append a log line to the event feed of an active job, if the caller holds the lease. The row
-- lock waits for a concurrent transition of the job and checks the lease again after it. It is
-- exclusive (not FOR SHARE), so two log lines of one job are never in flight at once: event ids
-- are taken at insert, and one taken before another must also commit before it, or a reader
-- resuming after the later id skips the earlier one for good.
-- $1 id text, $2 lease_token text, $3 line text, $4 now bigint, $5 channel text (the schema's NOTIFY channel)
-- Returns the event id, or no row when the lease was lost (LEASE_LOST).
WITH held AS (
  SELECT id FROM offload.jobs WHERE id = $1 AND state = 'active' AND lease_token = $2 FOR NO KEY UPDATE
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'log', jsonb_build_object('line', $3::text), $4::bigint FROM held
  RETURNING id
), notified AS (
  SELECT pg_notify($5::text, coalesce(current_setting('offload_notify.origin', true), '') || ' quiet') FROM logged LIMIT 1
)
SELECT l.id FROM logged l LEFT JOIN notified ON true;
