-- Stops the server session still running a claim this backend gave up on behind a transaction
-- pooler, where the process id the client knows is the pooler's (end-backend.sql cannot be
-- used). The claim's text starts with a comment naming its token base (postgres-backend.ts), and
-- pg_stat_activity shows a running statement's text from its start (it is cut at
-- track_activity_query_size only at the end). Only sessions of this database and user, and only
-- while the statement runs: a session that went idle has committed or rolled back for good.
-- Asked again until it answers no row.
-- $1 tag text (the comment the claim's text starts with)
-- Returns one row per session still running that claim.
SELECT pg_terminate_backend(pid) AS signalled
  FROM pg_stat_activity
 WHERE datname = current_database() AND usename = current_user AND state = 'active'
   AND pid <> pg_backend_pid() AND starts_with(query, $1::text);
