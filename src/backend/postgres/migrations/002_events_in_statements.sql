-- Offload schema for PostgreSQL, version 2: state events are written by the statements that make
-- the transitions (an INSERT INTO events in a CTE beside the UPDATE or INSERT, then pg_notify),
-- not by row-set triggers. The triggers copied every changed row, payload included, into two
-- transition tables and ran two PL/pgSQL functions per statement; written in the statement, an
-- event costs its own row only. Every statement that changes a job's state is in queries/*.sql
-- and writes the event there (the conformance suite reads them back).
-- Processes still running version-1 code during a rolling upgrade keep working, but their
-- transitions write no events and wake no one until they are restarted (watchers fall back to
-- their safety poll).
DROP TRIGGER jobs_insert_event ON offload.jobs;
DROP TRIGGER jobs_update_event ON offload.jobs;
DROP TRIGGER events_notify ON offload.events;
DROP FUNCTION offload.jobs_inserted();
DROP FUNCTION offload.jobs_updated();
DROP FUNCTION offload.events_notify();
DROP FUNCTION offload.claim(text[], integer, text, bigint, bigint);

-- Claim, with due scheduled and retrying jobs staged first: two statements in one round trip and
-- one transaction, each writing its state events. Staging skips rows another claimer holds (SKIP
-- LOCKED), so claimers never wait on each other. Notifies p_channel when anything moved. Returns
-- the claimed rows (the caller sorts them into claim order).
CREATE FUNCTION offload.claim(p_queues text[], p_limit integer, p_worker text, p_lease_until bigint, p_now bigint, p_channel text)
RETURNS SETOF offload.jobs LANGUAGE plpgsql AS $$
DECLARE
  staged integer := 0;
BEGIN
  -- A claim need not be durable before the worker starts (see 001_initial.sql).
  PERFORM set_config('synchronous_commit', 'off', true);
  -- Most claims find nothing to stage: look before writing.
  IF EXISTS (SELECT FROM offload.jobs
              WHERE state IN ('scheduled', 'retrying') AND run_at <= p_now AND queue = ANY (p_queues)) THEN
    WITH moved AS (
      UPDATE offload.jobs SET state = 'queued', updated_at = p_now
       WHERE id IN (SELECT id FROM offload.jobs
                     WHERE state IN ('scheduled', 'retrying') AND run_at <= p_now AND queue = ANY (p_queues)
                     FOR UPDATE SKIP LOCKED)
      RETURNING id, attempt
    )
    INSERT INTO offload.events (job_id, type, data, at)
    SELECT id, 'state', jsonb_build_object('state', 'queued', 'attempt', attempt), p_now FROM moved ORDER BY id;
    GET DIAGNOSTICS staged = ROW_COUNT;
  END IF;
  -- One ordered index scan per queue, then the best p_limit of those (see 001_initial.sql).
  RETURN QUERY
  WITH claimed AS (
    UPDATE offload.jobs j
       SET state = 'active', attempt = j.attempt + 1, lease_token = replace(gen_random_uuid()::text, '-', ''),
           lease_until = p_lease_until, worker = p_worker, started_at = p_now, updated_at = p_now,
           cancel_requested = false
      FROM (SELECT c.id
              FROM unnest(p_queues) AS q(name)
             CROSS JOIN LATERAL (
                   SELECT id, priority, run_at FROM offload.jobs
                    WHERE state = 'queued' AND queue = q.name
                    ORDER BY priority DESC, run_at, id
                    LIMIT p_limit
                      FOR UPDATE SKIP LOCKED) c
             ORDER BY c.priority DESC, c.run_at, c.id
             LIMIT p_limit) picked
     WHERE j.id = picked.id
    RETURNING j.*
  ), logged AS (
    INSERT INTO offload.events (job_id, type, data, at)
    SELECT id, 'state', jsonb_build_object('state', 'active', 'attempt', attempt), p_now FROM claimed ORDER BY id
  )
  SELECT * FROM claimed;
  IF FOUND OR staged > 0 THEN
    PERFORM pg_notify(p_channel, '');
  END IF;
END $$;

-- Processes still on version-1 code call claim with five arguments until they restart.
CREATE FUNCTION offload.claim(p_queues text[], p_limit integer, p_worker text, p_lease_until bigint, p_now bigint)
RETURNS SETOF offload.jobs LANGUAGE sql AS $$
  SELECT * FROM offload.claim(p_queues, p_limit, p_worker, p_lease_until, p_now,
    'offload:' || (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'offload.jobs'::regclass))
$$;
