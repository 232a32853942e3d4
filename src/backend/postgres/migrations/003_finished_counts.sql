-- Offload schema for PostgreSQL, version 3: counts of finished jobs kept in a small table, so that
-- `counts()` (`offload queues`, the outbox relay's queue discovery) costs the same with a hundred
-- retained jobs as with a hundred million. Unfinished jobs are counted through their partial
-- indexes (queries/counts.sql); finished ones grow with retention, and were a scan of all jobs.
--
-- Every statement that moves a job into or out of a final state adds its deltas here, in the same
-- statement (a CTE), grouped by queue and state. The rows are split into shards by the writer's
-- backend pid, so two connections finishing jobs of one queue rarely wait on one row: a counter
-- row stays locked until its transaction commits. A statement upserts its rows in (queue, state)
-- order after all its job rows are locked, so counter locks cannot form a cycle.
--
-- Rolling upgrade: processes still running version-2 code do not write here, so the jobs they
-- finish are missing from the counts until those processes are restarted and the counts rebuilt
-- (docs/postgres.md, "Counts"). Nothing else depends on these numbers.
CREATE TABLE offload.finished_counts (
  queue text NOT NULL,
  state text NOT NULL CHECK (state IN ('succeeded', 'failed', 'cancelled')),
  shard integer NOT NULL,
  n     bigint NOT NULL,
  PRIMARY KEY (queue, state, shard)
);

INSERT INTO offload.finished_counts (queue, state, shard, n)
SELECT queue, state, 0, count(*) FROM offload.jobs
 WHERE state IN ('succeeded', 'failed', 'cancelled')
 GROUP BY queue, state;
