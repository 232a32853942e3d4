-- After fold-counts.sql: drop the counters that read 0, so a queue whose finished jobs are all
-- pruned keeps no row. A completion makes the row again (its upsert retries as an insert when it
-- meets a row deleted under it). Rows another transaction holds are left for next time.
-- No parameters.
DELETE FROM offload.finished_counts
 WHERE (queue, state, shard) IN (SELECT queue, state, shard FROM offload.finished_counts
                                  WHERE n = 0
                                    FOR UPDATE SKIP LOCKED);
