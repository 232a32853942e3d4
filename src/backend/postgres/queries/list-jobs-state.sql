-- The branch of list-jobs.sql for a state (`@state`) given alone, with no queue or task: its
-- index's walk, or the primary key's, as the planner's count of that state says.
UNION ALL
SELECT * FROM (
  SELECT * FROM offload.jobs
   WHERE $1::text = '@state' AND $2::text IS NULL AND $3::text IS NULL AND state = '@state' AND ($4::text IS NULL OR id < $4::text)
   ORDER BY id DESC
   LIMIT $5::int
) @state
