-- Offload schema for PostgreSQL, version 2: state events are written by the statements that make
-- the transitions (an INSERT INTO events in a CTE beside the UPDATE or INSERT, then pg_notify),
-- not by row-set triggers. The triggers copied every changed row, payload included, into two
-- transition tables and ran two PL/pgSQL functions per statement; written in the statement, an
-- event costs its own row only. Every statement that changes a job's state is in queries/*.sql
-- and writes the event there (the conformance suite reads them back).
-- Processes still running version-1 code during a rolling upgrade keep working (offload.claim()
-- stays for them; this version claims with queries/claim.sql), but their transitions write no
-- events and wake no one until they are restarted (watchers fall back to their safety poll).
DROP TRIGGER jobs_insert_event ON offload.jobs;
DROP TRIGGER jobs_update_event ON offload.jobs;
DROP TRIGGER events_notify ON offload.events;
DROP FUNCTION offload.jobs_inserted();
DROP FUNCTION offload.jobs_updated();
DROP FUNCTION offload.events_notify();
