-- Offload schema for PostgreSQL, version 1.
-- Every name written `offload.` is replaced by the configured schema when this file is loaded
-- (see migrate.ts), so one database can hold several independent Offload installations.
-- Applied once, under an advisory lock, inside one transaction: all of it or none of it.
-- Times are epoch milliseconds (bigint) from the caller's clock, never now().

CREATE TABLE offload.jobs (
  id               text COLLATE "C" PRIMARY KEY,   -- UUIDv7: byte order is time order
  task             text NOT NULL,
  queue            text NOT NULL,
  state            text NOT NULL CHECK (state IN ('scheduled','queued','active','retrying','succeeded','failed','cancelled')),
  payload          json NOT NULL,                  -- json, not jsonb: stored as given, no re-encoding cost
  priority         integer NOT NULL DEFAULT 0,
  run_at           bigint NOT NULL,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  key              text,
  owner            text,
  worker           text,
  lease_token      text,
  lease_until      bigint,
  cancel_requested boolean NOT NULL DEFAULT false,
  progress         double precision,
  progress_message text,
  result           json,
  errors           jsonb NOT NULL DEFAULT '[]',   -- jsonb: appended to with ||
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  started_at       bigint,
  finished_at      bigint
);

-- The claim walks this index in order, per queue, and stops after `limit` rows. (No other index
-- leads with queue: the planner must not be tempted to fetch all queued rows and sort them.)
CREATE INDEX jobs_claim ON offload.jobs (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_due ON offload.jobs (run_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX jobs_lease ON offload.jobs (lease_until) WHERE state = 'active';
CREATE INDEX jobs_finished ON offload.jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- At most one unfinished job per idempotency key; enqueue relies on ON CONFLICT with this index.
CREATE UNIQUE INDEX jobs_key ON offload.jobs (key)
  WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'active', 'retrying');

-- The event feed. An identity column gives ids that increase across the whole backend and never
-- go back after pruning (SSE clients resume by id).
CREATE TABLE offload.events (
  id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id text COLLATE "C" NOT NULL,
  type   text NOT NULL,
  data   jsonb NOT NULL,
  at     bigint NOT NULL
);
CREATE INDEX events_job ON offload.events (job_id, id);

-- State events come from triggers, so no transition can forget its event. Statement-level
-- triggers with transition tables write one INSERT per statement, not one per row: a claim or a
-- completion batch of 500 jobs costs one extra statement, not 500.
CREATE FUNCTION offload.jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT id, 'state', jsonb_build_object('state', state, 'attempt', attempt), updated_at
    FROM inserted_rows ORDER BY id;
  RETURN NULL;
END $$;

CREATE FUNCTION offload.jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO offload.events (job_id, type, data, at)
  SELECT n.id, 'state', jsonb_build_object('state', n.state, 'attempt', n.attempt), n.updated_at
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE o.state IS DISTINCT FROM n.state
   ORDER BY n.id;
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_insert_event AFTER INSERT ON offload.jobs
  REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION offload.jobs_inserted();
CREATE TRIGGER jobs_update_event AFTER UPDATE ON offload.jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION offload.jobs_updated();

-- Every event (state, progress, log) wakes watchers in every process: one NOTIFY per statement,
-- delivered at commit, so a rolled-back enqueue wakes nobody. The channel is per schema.
-- Statement triggers also fire for statements that changed nothing (a heartbeat, an empty
-- claim): only a statement that wrote events notifies.
CREATE FUNCTION offload.events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM new_events) THEN
    PERFORM pg_notify('offload:' || TG_TABLE_SCHEMA, '');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON offload.events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION offload.events_notify();

-- Claim, with due scheduled and retrying jobs staged first: two statements in one round trip and
-- one transaction. Staging skips rows another claimer holds (SKIP LOCKED), so claimers never wait
-- on each other. Returns the claimed rows (the caller sorts them into claim order).
CREATE FUNCTION offload.claim(p_queues text[], p_limit integer, p_worker text, p_lease_until bigint, p_now bigint)
RETURNS SETOF offload.jobs LANGUAGE plpgsql AS $$
BEGIN
  -- A claim need not be durable before the worker starts: if the server crashes before the WAL
  -- reaches disk, the job is simply queued again and rerun (at-least-once), and the worker's
  -- completion is refused by fencing. The completion itself commits synchronously, and flushes
  -- this claim with it. Saves one disk flush per claim.
  PERFORM set_config('synchronous_commit', 'off', true);
  -- Most claims find nothing to stage: look before writing (an UPDATE fires its triggers even
  -- when it changes no row).
  IF EXISTS (SELECT FROM offload.jobs
              WHERE state IN ('scheduled', 'retrying') AND run_at <= p_now AND queue = ANY (p_queues)) THEN
    UPDATE offload.jobs SET state = 'queued', updated_at = p_now
     WHERE id IN (SELECT id FROM offload.jobs
                   WHERE state IN ('scheduled', 'retrying') AND run_at <= p_now AND queue = ANY (p_queues)
                   FOR UPDATE SKIP LOCKED);
  END IF;
  -- One ordered index scan per queue (an index scan cannot keep its order over queue = ANY(...)),
  -- then the best `p_limit` of those. Rows locked here but not picked are free again at commit.
  RETURN QUERY
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
  RETURNING j.*;
END $$;
