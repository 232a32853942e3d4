-- Jobs newest first (ids are time-ordered), with optional filters and an id cursor.
-- Each shape of filter has its own branches, told apart by constants once the parameters are
-- known (these statements are planned for their parameters, pooled-query.ts), so only that
-- shape's branches run; the last sort and limit order their rows:
-- - no filter: a walk of the primary key from the cursor;
-- - filtered: one walk per state (the given one, or each of the seven), each stopping at $5 rows,
--   then the newest $5 of those. The states are written out, so the planner sees each one's
--   value: one unnest joined LATERAL was planned for a state it could not see, took every state
--   as common and walked the primary key (120,000 rows read for a page of a queue of 20,000).
-- A walk of a state other than queued and active uses (queue, state, id), (task, state, id) or
-- (state, id) (migration 006), and reads its page whatever the retention keeps. With a queue or a
-- task, the walk is ordered by it too (`queue DESC, id DESC`, the queue a range of one value): a
-- walk of the primary key cannot give that order, so the planner does not pick one that steps
-- over every newer job of other queues and states (75-230 ms for the largest queue's page behind
-- 80,000 unfinished jobs, 0.5 ms now). Queued and active jobs of a queue or task are read
-- through their own partial indexes (claim, lease), as much as the backlog that matches, and the
-- newest $5 kept: ordered by `id || ''` (the same order, ids being text in "C"), which no index
-- gives, so the planner cannot take a walk of the primary key, which it expects to find them
-- soon and which, when fewer than a page match, goes on to the table's end (20,000 rows read for
-- 5 queued jobs of a queue in the test). With only a state, the planner's count of that state is
-- right, and it walks the primary key or reads the backlog as that count says.
-- One walk of the primary key that dropped rows until it had a page read the whole table when
-- few jobs matched: 1.3 s with 2,500,000 jobs to list a queue with none.
-- $1 state, $2 queue, $3 task, $4 before (each text, NULL for any), $5 limit int
-- Returns the rows.
-- Each `@each` line stands for the file it names once per state (queries.ts): the branches are
-- written once, and still name each state as a constant.
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text IS NULL AND $2::text IS NULL AND $3::text IS NULL
     AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) everything
@each list-jobs-indexed.sql scheduled retrying succeeded failed cancelled
@each list-jobs-backlog.sql queued active
@each list-jobs-state.sql scheduled retrying succeeded failed cancelled queued active
 ORDER BY id DESC
 LIMIT $5::int;
