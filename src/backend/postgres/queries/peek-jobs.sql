-- The state and newest event id of each job of a list, for many waiters at once (Backend.peekJobs).
-- The newest event comes from events_job (job_id, id), one index probe per job.
-- $1 ids text[]
-- Returns id, state, last_event (0 when the job has no event left) for each stored job.
SELECT j.id, j.state,
       coalesce((SELECT e.id FROM offload.events e WHERE e.job_id = j.id ORDER BY e.id DESC LIMIT 1), 0) AS last_event
  FROM offload.jobs j
 WHERE j.id = ANY($1::text[]);
