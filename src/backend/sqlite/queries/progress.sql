-- Record progress of an active job whose lease the caller holds (checked by run-history.sql in
-- the same transaction), and its newest progress event of this run.
-- :id :token :progress :message :now :event
UPDATE offload_jobs SET progress = :progress, progress_message = :message, updated_at = :now,
       run_log_lines = CASE WHEN run_token = :token THEN run_log_lines ELSE 0 END,
       run_token = :token, run_progress_event = :event
 WHERE id = :id;
