-- After a prune: fold the counters of finished jobs into shard 0. Every connection counts into
-- its own shard (pg_backend_pid() % 32), so one queue's jobs are spread over up to 32 rows that
-- prune, counting down on its own connection, never brings to zero one by one: queues named per
-- tenant would leave rows for every name ever used, and counts() sums them all. Rows that then
-- read 0 are dropped by drop-zero-counts.sql.
-- Locks: the rows of shards other than 0 are taken with SKIP LOCKED (one a completion holds is
-- folded next time), so this statement waits only in its upserts into shard 0, taken in queue,
-- state order as a completion takes them; a completion never waits on a row of another shard
-- than its own. No cycle of waits can form.
-- No parameters.
-- Returns n, the number of rows folded.
WITH folded AS (
  DELETE FROM offload.finished_counts c
   WHERE (c.queue, c.state, c.shard) IN (SELECT queue, state, shard FROM offload.finished_counts
                                          WHERE shard <> 0
                                            FOR UPDATE SKIP LOCKED)
  RETURNING c.queue, c.state, c.n
), summed AS (
  INSERT INTO offload.finished_counts AS c (queue, state, shard, n)
  SELECT queue, state, 0, sum(n) FROM folded GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
  ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT count(*)::int AS n FROM folded;
