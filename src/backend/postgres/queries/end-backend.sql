-- Stops the server process of a connection this backend gave up on (a claim past its reply
-- timeout, still running there, and able to commit after a reclaim looked), if it is still there.
-- Only a process of this database and user: never anyone else's. Asked again until it answers no
-- row: the process has ended, and what its statement did is committed or rolled back for good.
-- $1 pid int
-- Returns one row while the process exists.
SELECT pg_terminate_backend(pid) AS signalled
  FROM pg_stat_activity
 WHERE pid = $1::int AND datname = current_database() AND usename = current_user;
