-- Claim up to $2 due jobs of the given queues, in one statement: queued jobs move to active in
-- priority DESC, run_at, id order with FOR UPDATE SKIP LOCKED, each with attempt + 1 and a fresh
-- lease token, and their state events are written beside them. The common case, with no
-- scheduled or retrying job due in these queues, needs nothing else. When $6 is true and one is
-- due, this statement claims nothing and says so (due = true): the caller stages due jobs
-- (stage-due.sql), so that they compete for the claim in order, and claims again with $6 false
-- (a due job another transaction holds locked must not stop the claim).
-- The claimed ids are one array (an InitPlan) that the UPDATE looks up by primary key: it runs on a
-- generic plan (pooled-query.ts), where LIMIT $2 is estimated at a tenth of the table, and joined
-- as a relation that estimate chose a hash join over a scan of every job (14 ms instead of 1 for
-- a claim of 50 among 80,000 jobs; with custom plans it did so already for two queues).
-- The claim commits asynchronously (synchronous_commit off for this transaction): see
-- 001_initial.sql.
-- $1 queues text[], $2 limit int, $3 worker text, $4 lease_until bigint, $5 now bigint,
-- $6 check_due boolean, $7 token base text (random, made by the caller for this claim: each lease
-- token is the base and the job's id, so the jobs of a claim whose reply was lost can be found
-- again, reclaim.sql)
-- $8 best_first boolean: over more queues than $2, take candidates only from the $2 queues whose
-- best queued jobs rank highest (read without locks first): the claim's jobs can come from no
-- other queue, as each of those holds a job that ranks above any other queue's best. Locking up
-- to $2 candidates in every queue took 25 ms per claim over 1,000 queues; the caller passes it
-- when there are more queues than $2, and claims again without it when the claim comes back
-- short while more queues have jobs (more_queues: rows other claims held kept it short).
-- Returns the claimed rows in no particular order (the caller sorts), each with due = false and
-- more_queues; or one row of NULLs with due and more_queues when nothing was claimed.
WITH due AS MATERIALIZED (
  SELECT $6::boolean AND EXISTS (SELECT FROM offload.jobs
                                  WHERE state IN ('scheduled', 'retrying') AND run_at <= $5::bigint AND queue = ANY ($1::text[])) AS pending,
         set_config('synchronous_commit', 'off', true) AS synchronous_commit
), best AS MATERIALIZED (
  SELECT q.name, b.priority, b.run_at, b.id
    FROM unnest($1::text[]) AS q(name)
   CROSS JOIN LATERAL (
         SELECT priority, run_at, id FROM offload.jobs
          WHERE state = 'queued' AND queue = q.name
          ORDER BY priority DESC, run_at, id
          LIMIT 1) b
   WHERE $8::boolean AND NOT (SELECT pending FROM due)
), chosen AS MATERIALIZED (
  SELECT ARRAY(SELECT name FROM best ORDER BY priority DESC, run_at, id LIMIT $2::int) AS names,
         (SELECT count(*) FROM best) > $2::int AS more
), claimed AS (
  UPDATE offload.jobs j
     SET state = 'active', attempt = j.attempt + 1, lease_token = $7::text || j.id,
         lease_until = $4::bigint, worker = $3::text, started_at = $5::bigint, updated_at = $5::bigint,
         cancel_requested = false
   WHERE j.id = ANY (ARRAY(
           SELECT c.id
             FROM unnest(CASE WHEN $8::boolean THEN (SELECT names FROM chosen) ELSE $1::text[] END) AS q(name)
            CROSS JOIN LATERAL (
                  SELECT id, priority, run_at FROM offload.jobs
                   WHERE state = 'queued' AND queue = q.name AND NOT (SELECT pending FROM due)
                   ORDER BY priority DESC, run_at, id
                   LIMIT $2::int
                     FOR UPDATE SKIP LOCKED) c
            ORDER BY c.priority DESC, c.run_at, c.id
            LIMIT $2::int))
  -- Columns named, not j.*: prepared statements must survive a migration that adds one (get-job.sql).
  RETURNING j.id, j.task, j.queue, j.state, j.payload, j.priority, j.run_at, j.attempt, j.max_attempts, j.key, j.owner, j.worker, j.lease_token, j.lease_until, j.cancel_requested, j.progress, j.progress_message, j.result, j.errors, j.created_at, j.updated_at, j.started_at, j.finished_at
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'active', 'attempt', attempt), $5::bigint FROM claimed ORDER BY id
  RETURNING job_id
)
SELECT c.*, d.pending AS due, $8::boolean AND (SELECT more FROM chosen) AS more_queues
  FROM due d LEFT JOIN claimed c ON true;
