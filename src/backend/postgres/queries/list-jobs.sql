-- Jobs newest first (ids are time-ordered), with optional filters and an id cursor.
-- $1 state, $2 queue, $3 task, $4 before (each text, NULL for any), $5 limit int
-- Returns the rows.
SELECT * FROM offload.jobs
 WHERE ($1::text IS NULL OR state = $1::text)
   AND ($2::text IS NULL OR queue = $2::text)
   AND ($3::text IS NULL OR task = $3::text)
   AND ($4::text IS NULL OR id < $4::text)
 ORDER BY id DESC
 LIMIT $5::int;
