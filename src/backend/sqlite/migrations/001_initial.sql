-- Offload schema, version 1.
CREATE TABLE offload_jobs (
  id               TEXT PRIMARY KEY,
  task             TEXT NOT NULL,
  queue            TEXT NOT NULL,
  state            TEXT NOT NULL CHECK (state IN ('scheduled','queued','active','retrying','succeeded','failed','cancelled')),
  payload          TEXT NOT NULL,
  priority         INTEGER NOT NULL DEFAULT 0,
  run_at           INTEGER NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  key              TEXT,
  owner            TEXT,
  worker           TEXT,
  lease_token      TEXT,
  lease_until      INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  progress         REAL,
  progress_message TEXT,
  result           TEXT,
  errors           TEXT NOT NULL DEFAULT '[]',
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER
);

-- The claim scans this in order: highest priority first, then oldest due, then oldest id.
CREATE INDEX offload_jobs_claim ON offload_jobs (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX offload_jobs_due ON offload_jobs (run_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX offload_jobs_due_by_queue ON offload_jobs (queue, run_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX offload_jobs_lease ON offload_jobs (lease_until) WHERE state = 'active';
CREATE INDEX offload_jobs_finished ON offload_jobs (state, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX offload_jobs_queue_state ON offload_jobs (queue, state);
-- At most one unfinished job per idempotency key.
CREATE UNIQUE INDEX offload_jobs_key ON offload_jobs (key)
  WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'active', 'retrying');

-- The event feed: AUTOINCREMENT so ids never go back after pruning (SSE resumes by id).
CREATE TABLE offload_events (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  type   TEXT NOT NULL,
  data   TEXT NOT NULL,
  at     INTEGER NOT NULL
);
CREATE INDEX offload_events_job ON offload_events (job_id, id);

-- State events are written by triggers, so no transition can forget its event.
CREATE TRIGGER offload_jobs_insert_event AFTER INSERT ON offload_jobs
BEGIN
  INSERT INTO offload_events (job_id, type, data, at)
  VALUES (new.id, 'state', json_object('state', new.state, 'attempt', new.attempt), new.updated_at);
END;

CREATE TRIGGER offload_jobs_state_event AFTER UPDATE OF state ON offload_jobs
WHEN old.state IS NOT new.state
BEGIN
  INSERT INTO offload_events (job_id, type, data, at)
  VALUES (new.id, 'state', json_object('state', new.state, 'attempt', new.attempt), new.updated_at);
END;

CREATE TRIGGER offload_jobs_delete_events AFTER DELETE ON offload_jobs
BEGIN
  DELETE FROM offload_events WHERE job_id = old.id;
END;
