-- What the run holding this lease has put in its job's history (migration 002), if the caller
-- still holds the lease of the active job. Columns of an earlier run count as none.
-- :id :token
SELECT CASE WHEN run_token = :token THEN run_progress_event END AS progress_event,
       CASE WHEN run_token = :token THEN run_log_lines ELSE 0 END AS log_lines
  FROM offload_jobs WHERE id = :id AND state = 'active' AND lease_token = :token;
