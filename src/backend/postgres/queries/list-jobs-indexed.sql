-- The branches of list-jobs.sql for one state that migration 006's indexes hold (`@state`, named
-- by list-jobs.sql): with a queue, or with a task.
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE coalesce($1::text, '@state') = '@state' AND $2::text IS NOT NULL
     AND queue >= $2::text AND queue <= $2::text AND state = '@state' AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY queue DESC, id DESC
   LIMIT $5::int
) @state_in_queue
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE coalesce($1::text, '@state') = '@state' AND $2::text IS NULL AND $3::text IS NOT NULL
     AND task >= $3::text AND task <= $3::text AND state = '@state' AND ($4::text IS NULL OR id < $4::text)
   ORDER BY task DESC, id DESC
   LIMIT $5::int
) @state_of_task
