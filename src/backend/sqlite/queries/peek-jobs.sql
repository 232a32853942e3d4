-- The state and newest event id of each job of a list (a JSON array of ids), for many waiters at
-- once (Backend.peekJobs). The newest event comes from offload_events_job (job_id, id).
-- :ids
SELECT j.id, j.state,
       coalesce((SELECT max(e.id) FROM offload_events e WHERE e.job_id = j.id), 0) AS last_event
  FROM offload_jobs j
 WHERE j.id IN (SELECT value FROM json_each(:ids));
