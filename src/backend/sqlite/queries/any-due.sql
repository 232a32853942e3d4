-- Whether any scheduled or retrying job has come due: an index probe that every claim makes, so the
-- bounded staging statement (stage-due.sql, three times the cost even when it finds nothing) runs
-- only when there is something to stage.
-- :now
SELECT 1 AS due FROM offload_jobs WHERE state IN ('scheduled', 'retrying') AND run_at <= :now LIMIT 1;
