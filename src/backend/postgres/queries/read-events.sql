-- Events after an id, optionally of one job, optionally up to an id, oldest first.
-- $1 job_id text (NULL for all), $2 after_id bigint, $3 limit int, $4 up_to bigint (NULL for no bound)
-- Returns the rows.
SELECT id, job_id, type, data, at FROM offload.events
 WHERE id > $2::bigint AND ($1::text IS NULL OR job_id = $1::text) AND ($4::bigint IS NULL OR id <= $4::bigint)
 ORDER BY id
 LIMIT $3::int;
