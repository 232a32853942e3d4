-- A job put back by hand keeps its newest :events events besides the requeue's own, which the
-- requeue's UPDATE has written (its state trigger) before this runs: that one is the job's newest,
-- so the table's newest row, which keeps event ids from going back (001_initial.sql), stays.
-- :id :events
DELETE FROM offload_events
 WHERE job_id = :id
   AND id < (SELECT id FROM offload_events WHERE job_id = :id ORDER BY id DESC LIMIT 1 OFFSET :events);
