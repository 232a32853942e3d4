-- Append a log line to the event feed of an active job, if the caller holds the lease. The row
-- lock waits for a concurrent transition of the job and checks the lease again after it. It is
-- exclusive (not FOR SHARE), so two log lines of one job are never in flight at once: event ids
-- are taken at insert, and one taken before another must also commit before it, or a reader
-- resuming after the later id skips the earlier one for good.
-- A run keeps its first $6 lines; the next is $7 (a line that says so), and later ones are not
-- kept (migration 004).
-- $1 id text, $2 lease_token text, $3 line text, $4 now bigint, $5 max lines int, $6 cap line text,
-- Returns the run's line count, or no row when the lease was lost (LEASE_LOST).
WITH held AS (
  SELECT id, CASE WHEN run_token = $2 THEN run_log_lines ELSE 0 END + 1 AS n
    FROM offload.jobs WHERE id = $1 AND state = 'active' AND lease_token = $2 FOR NO KEY UPDATE
), counted AS (
  UPDATE offload.jobs j SET run_log_lines = h.n,
         run_progress_event = CASE WHEN j.run_token = $2 THEN j.run_progress_event END, run_token = $2
    FROM held h WHERE j.id = h.id AND h.n <= $5::int + 1
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'log', jsonb_build_object('line', CASE WHEN n <= $5::int THEN $3::text ELSE $6::text END), $4::bigint
    FROM held WHERE n <= $5::int + 1
  RETURNING id
)
SELECT h.n FROM held h;
