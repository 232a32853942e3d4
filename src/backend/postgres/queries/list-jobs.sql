-- Jobs newest first (ids are time-ordered), with optional filters and an id cursor.
-- Each shape of filter has its own branch, told apart by constants once the parameters are known
-- (these statements are planned for their parameters, pooled-query.ts), so only that shape's
-- branches run; the last sort and limit order their rows:
-- - no filter: a walk of the primary key from the cursor;
-- - a state: one walk for that state, its value in plain sight of the planner;
-- - a queue or a task and no state: one walk per state, each stopping at $5 rows, then the newest
--   $5 of those. The states are written out: one unnest joined LATERAL was planned for a state
--   it could not see, took every state as common and walked the primary key (120,000 rows read
--   for a page of a queue of 20,000 jobs).
-- A walk of a state other than queued and active uses (state, id), (queue, state, id) or
-- (task, state, id) (migration 006), and reads its page whatever the retention keeps. Queued and
-- active jobs have their own partial indexes (claim, lease): the planner walks the primary key
-- (such jobs are mostly the newest) or reads the matching backlog through them and sorts it.
-- One walk of the primary key that dropped rows until it had a page read the whole table when
-- few jobs matched: 1.3 s with 2,500,000 jobs to list a queue with none.
-- $1 state, $2 queue, $3 task, $4 before (each text, NULL for any), $5 limit int
-- Returns the rows.
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND $2::text IS NULL AND $3::text IS NULL
     AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) everything
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NOT NULL AND state = $1::text
     AND ($2::text IS NULL OR queue = $2::text)
     AND ($3::text IS NULL OR task = $3::text)
     AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) one_state
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'scheduled'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) scheduled
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'queued'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) queued
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'active'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) active
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'retrying'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) retrying
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'succeeded'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) succeeded
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'failed'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) failed
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = 'cancelled'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) cancelled
 ORDER BY id DESC
 LIMIT $5::int;
