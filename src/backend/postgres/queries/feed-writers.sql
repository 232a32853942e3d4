-- Which of the transactions feed-horizon.sql found writing to the events table are still running:
-- the global feed waits for them before it reads up to its horizon.
-- $1 writers text[] (virtual transaction ids)
-- Returns one row per transaction still holding the events table's row-exclusive lock.
SELECT DISTINCT l.virtualtransaction AS writer FROM pg_locks AS l
 WHERE l.locktype = 'relation' AND l.relation = 'offload.events'::regclass
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.mode = 'RowExclusiveLock' AND l.granted AND l.virtualtransaction = ANY($1::text[]);
