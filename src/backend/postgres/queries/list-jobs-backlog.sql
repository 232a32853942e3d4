-- The branch of list-jobs.sql for queued or active jobs (`@state`) of a queue or a task, read
-- through their own partial indexes (claim, lease).
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE coalesce($1::text, '@state') = '@state' AND NOT ($2::text IS NULL AND $3::text IS NULL) AND state = '@state'
     AND ($2::text IS NULL OR queue = $2::text) AND ($3::text IS NULL OR task = $3::text) AND ($4::text IS NULL OR id < $4::text)
   ORDER BY (id || '') DESC
   LIMIT $5::int
) @state_filtered
