-- Events after an id, optionally of one job, oldest first.
-- $1 job_id text (NULL for all), $2 after_id bigint, $3 limit int
-- Returns the rows.
SELECT id, job_id, type, data, at FROM offload.events
 WHERE id > $2::bigint AND ($1::text IS NULL OR job_id = $1::text)
 ORDER BY id
 LIMIT $3::int;
