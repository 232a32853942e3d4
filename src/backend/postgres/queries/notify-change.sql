-- Tells other processes that this one changed jobs, once the change has committed (notifier.ts).
-- A transaction of its own that writes nothing: it has no commit record to flush, so the
-- database-wide lock a NOTIFY takes at commit is let go at once.
-- $1 channel text (the schema's NOTIFY channel), $2 payload text (the origin, then " quiet" for
-- a change that brings nothing to claim)
SELECT pg_notify($1::text, $2::text);
