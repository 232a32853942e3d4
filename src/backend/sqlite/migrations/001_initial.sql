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
-- No (queue, state) index: it would cost two index writes on every transition of every job, and
-- only counts() reads it; counts() scans the table instead (fine at SQLite's scale: see docs).
-- At most one unfinished job per idempotency key.
CREATE UNIQUE INDEX offload_jobs_key ON offload_jobs (key)
  WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'active', 'retrying');

-- The event feed. Ids must never go back (SSE resumes by id). A plain rowid is max(id) + 1, so it
-- could only go back if the newest event were deleted: the delete trigger below always keeps the
-- newest row. (AUTOINCREMENT would guarantee the same, at the cost of a write per event.)
CREATE TABLE offload_events (
  id     INTEGER PRIMARY KEY,
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
  DELETE FROM offload_events WHERE job_id = old.id AND id < (SELECT max(id) FROM offload_events);
END;
