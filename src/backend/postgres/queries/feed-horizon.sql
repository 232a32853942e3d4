-- The global feed's first look (postgres-backend.ts, #readFeed): the newest of the next $2 events
-- after $1 that this statement's snapshot sees, and the transactions other than this session's
-- that hold the events table's row-exclusive lock now. Ids are taken in one order and committed in
-- another, so an id below `upto` that is not seen yet may still commit; only a transaction that
-- writes to the events table can hold one, and it took the table's lock before it took an id (at
-- the start of its statement) and keeps it until it ends. pg_locks is read after the snapshot was
-- taken, so every transaction holding an unseen id below `upto` is among `writers`; one that takes
-- the lock later takes its ids later, above `upto`.
-- $1 after_id bigint, $2 limit int
-- Returns one row: upto bigint (NULL: no event after $1), writers text[] (their virtual transaction ids).
SELECT (SELECT max(id) FROM (SELECT id FROM offload.events WHERE id > $1::bigint ORDER BY id LIMIT $2::int) AS next) AS upto,
       ARRAY(SELECT DISTINCT l.virtualtransaction FROM pg_locks AS l
              WHERE l.locktype = 'relation' AND l.relation = 'offload.events'::regclass
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()) AS writers;
