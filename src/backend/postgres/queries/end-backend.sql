-- Stops the server process of a connection this backend gave up on (a claim past its reply
-- timeout, still running there, and able to commit after a reclaim looked), if it is still there.
-- Only a process of this database and user, and, from the second call on, the same process that
-- the first call found (its start time): a pid used again by a new process is never touched.
-- And only while that process runs this backend's claim: its text (which opens with this backend's
-- origin) starts with what pg_stat_activity shows, cut at track_activity_query_size or not. Behind
-- a session-mode pooler the pid the client knows is the pooler's own number, which may happen to
-- be the pid of an unrelated session of the same user, and that session is left alone.
-- Asked again until it answers no row: the process has ended or gone idle, and what its statement
-- did is committed or rolled back for good.
-- $1 pid int, $2 backend_start as text (NULL on the first call; text keeps its microseconds),
-- $3 the claim's text as sent
-- Returns one row, with the process's start time, while the process runs the claim.
SELECT pg_terminate_backend(pid) AS signalled, backend_start::text AS backend_start
  FROM pg_stat_activity
 WHERE pid = $1::int AND datname = current_database() AND usename = current_user
   AND ($2::text IS NULL OR backend_start::text = $2::text)
   AND state = 'active' AND query <> '' AND starts_with($3::text, query);
