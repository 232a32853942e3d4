-- Bulk retry of failed jobs matching the filters. A job whose idempotency key an unfinished job of
-- its task holds now is skipped, and of several failed jobs of a task sharing a key only the one that failed last
-- (the latest finished_at, then the highest id) is replayed, as on every backend, so
-- the statement never trips the unique key index. Keyless jobs are told apart from keyed ones
-- (`key IS NULL` leads the DISTINCT), or a key equal to another job's id would merge the two.
-- Each job's history is trimmed as by retry.sql.
-- $1 queue text, $2 task text, $3 since bigint, $4 until bigint (each NULL for any), $5 now bigint,
-- $6 errors kept int, $7 events kept int
-- Returns the id of each job queued.
WITH candidates AS (
  SELECT DISTINCT ON (j.key IS NULL, j.task, coalesce(j.key, j.id)) j.id
    FROM offload.jobs j
   WHERE j.state = 'failed'
     AND ($1::text IS NULL OR j.queue = $1::text)
     AND ($2::text IS NULL OR j.task = $2::text)
     AND ($3::bigint IS NULL OR j.finished_at >= $3::bigint)
     AND ($4::bigint IS NULL OR j.finished_at <= $4::bigint)
     AND (j.key IS NULL OR NOT EXISTS (
           SELECT FROM offload.jobs u WHERE u.task = j.task AND u.key = j.key AND u.state IN ('scheduled', 'queued', 'active', 'retrying')))
   ORDER BY j.key IS NULL, j.task, coalesce(j.key, j.id), j.finished_at DESC, j.id DESC
), locked AS MATERIALIZED (
  -- Two replays at once over the same jobs would each wait on rows the other holds (a deadlock):
  -- rows another statement holds are left to it. Locking re-reads the row, so a job that left
  -- `failed` meanwhile is dropped here.
  SELECT id, jsonb_array_length(errors) > $6::int AS over FROM offload.jobs
   WHERE id IN (SELECT id FROM candidates) AND state = 'failed'
     FOR UPDATE SKIP LOCKED
), moved AS (
  UPDATE offload.jobs
     SET state = 'queued', attempt = 0, run_at = $5::bigint, finished_at = NULL, cancel_requested = false,
         worker = NULL, updated_at = $5::bigint, errors = CASE WHEN jsonb_array_length(errors) <= $6::int THEN errors ELSE coalesce(
           (SELECT jsonb_agg(e.error ORDER BY e.n) FROM jsonb_array_elements(errors) WITH ORDINALITY AS e(error, n)
             WHERE e.n > jsonb_array_length(errors) - $6::int), '[]'::jsonb) END
   WHERE id IN (SELECT id FROM locked) AND state = 'failed'
  RETURNING id, queue
), counted AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, 'failed', pg_backend_pid() % 32, -count(*) FROM moved
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
), logged AS (
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', 'queued', 'attempt', 0), $5::bigint FROM moved ORDER BY id
  RETURNING job_id
), trimmed AS (
  -- As in retry.sql: this statement's own events are not among those it reads.
  -- Only of jobs whose errors were over their cap: finding the cut reads a job's events, and a
  -- replay of 1,000 jobs of 2,000 events each took 8 s instead of 28 ms when it read every job's.
  -- (`locked`, not a join with `moved`, which holds the same jobs: a join of two CTEs has no
  -- index, and one of 10,000 rows took seconds.)
  DELETE FROM offload.events e
   USING locked l
   WHERE l.over AND e.job_id = l.id
     AND e.id <= (SELECT x.id FROM offload.events x WHERE x.job_id = l.id ORDER BY x.id DESC OFFSET $7::int LIMIT 1)
)
SELECT m.id FROM moved m;
