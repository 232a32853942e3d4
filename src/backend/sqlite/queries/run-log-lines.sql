-- How many log lines this run has written (checked by run-history.sql in the same transaction).
-- :id :token :lines
UPDATE offload_jobs SET run_log_lines = :lines,
       run_progress_event = CASE WHEN run_token = :token THEN run_progress_event END,
       run_token = :token
 WHERE id = :id;
