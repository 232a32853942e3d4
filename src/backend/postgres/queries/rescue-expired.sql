-- Active jobs whose lease ran out (their worker died or hung) go back to queued, or to failed when
-- that was their last attempt, or to cancelled when a cancel was requested. Clearing the token
-- kills the old lease: a late acknowledgement from the lost worker is refused. SKIP LOCKED: a row
-- being completed right now is left to that completion. Up to $2 jobs, the longest expired first:
-- the caller repeats until fewer come back (a step bounds one statement's time, for a server's
-- statement_timeout: a fleet that died holding thousands of jobs was one statement, cancelled on
-- every sweep, and its jobs stayed active for good).
-- $1 now bigint, $2 limit int
-- Returns id and the new state of each rescued job.
WITH moved AS (
  UPDATE offload.jobs
     SET state = CASE WHEN cancel_requested THEN 'cancelled'
                      WHEN attempt < max_attempts THEN 'queued' ELSE 'failed' END,
         finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN $1::bigint ELSE NULL END,
         errors = errors || jsonb_build_array(jsonb_build_object(
           'attempt', attempt, 'name', 'LeaseExpired',
           'message', 'lease expired: worker ' || coalesce(worker, '?') || ' stopped renewing it',
           'worker', worker, 'at', $1::bigint)),
         lease_token = NULL, lease_until = NULL, updated_at = $1::bigint
   -- The ids as one array (an InitPlan), run once, each row then found by primary key (as in
   -- claim.sql). As `id IN (subquery)`, planned for the one expired row the statistics expect,
   -- the subquery was the inner side of a nested loop, run again (its rows locked again) for each
   -- expired job: 140,000 buffers to rescue 500 jobs, growing with the square of a dead fleet's
   -- jobs. The subquery locks the rows and checks state and lease on their newest version, and
   -- they stay locked until commit: the update needs no second look.
   WHERE id = SOME (ARRAY(SELECT id FROM offload.jobs WHERE state = 'active' AND lease_until < $1::bigint
                          ORDER BY lease_until LIMIT $2::int FOR UPDATE SKIP LOCKED))
     -- Most sweeps find nothing, and the guard says so from one walk of jobs_lease in order. The
     -- walk marks the entries of jobs no longer active (left in the index until a vacuum) as
     -- dead, so the next sweep steps over them. The search above, planned for few rows, reads
     -- its range as a bitmap, which marks nothing: every sweep (each worker's, every second)
     -- re-read every job that had been active since the last vacuum: 760 ms a sweep with 716,000
     -- such entries (a busy stretch between two vacuums), each second, with nothing expired.
     AND EXISTS (SELECT FROM offload.jobs WHERE state = 'active' AND lease_until < $1::bigint)
  RETURNING id, state, attempt, queue
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, pg_backend_pid() % 32, count(*) FROM moved
   WHERE state <> 'queued'
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), $1::bigint FROM moved ORDER BY id
  RETURNING job_id
)
SELECT m.id, m.state FROM moved m;
