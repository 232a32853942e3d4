-- Offload schema for SQLite, version 4: counts of finished jobs kept in a small table, so that
-- counts() (`offload queues`) costs the same with a hundred retained jobs as with millions. It was
-- a scan of every job: with the default retention (7 days succeeded, 30 failed) that grew with
-- the life of the app, 0.57 s of a blocked event loop per call with 1,000,000 jobs retained.
-- Unfinished jobs are counted through their partial indexes (queries/counts.sql).
--
-- Triggers keep the counters, as they write the state events: no transition into or out of a
-- final state can forget them (complete, fail, cancel, retry, replay, release, rescue, prune).
-- SQLite has one writer at a time, so one row per queue and state is enough (PostgreSQL shards).
CREATE TABLE offload_finished_counts (
  queue TEXT NOT NULL,
  state TEXT NOT NULL,
  n     INTEGER NOT NULL,
  PRIMARY KEY (queue, state)
) WITHOUT ROWID;

INSERT INTO offload_finished_counts (queue, state, n)
SELECT queue, state, count(*) FROM offload_jobs
 WHERE state IN ('succeeded', 'failed', 'cancelled')
 GROUP BY queue, state;

CREATE TRIGGER offload_jobs_count_insert AFTER INSERT ON offload_jobs
WHEN new.state IN ('succeeded', 'failed', 'cancelled')
BEGIN
  INSERT INTO offload_finished_counts (queue, state, n) VALUES (new.queue, new.state, 1)
  ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER offload_jobs_count_leave AFTER UPDATE OF state, queue ON offload_jobs
WHEN old.state IN ('succeeded', 'failed', 'cancelled') AND (old.state IS NOT new.state OR old.queue IS NOT new.queue)
BEGIN
  UPDATE offload_finished_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
END;

CREATE TRIGGER offload_jobs_count_enter AFTER UPDATE OF state, queue ON offload_jobs
WHEN new.state IN ('succeeded', 'failed', 'cancelled') AND (old.state IS NOT new.state OR old.queue IS NOT new.queue)
BEGIN
  INSERT INTO offload_finished_counts (queue, state, n) VALUES (new.queue, new.state, 1)
  ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER offload_jobs_count_delete AFTER DELETE ON offload_jobs
WHEN old.state IN ('succeeded', 'failed', 'cancelled')
BEGIN
  UPDATE offload_finished_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
END;
