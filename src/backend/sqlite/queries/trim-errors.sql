-- A job put back by hand keeps the errors of its newest :errors attempts (HistoryKept, backend.ts).
-- Its events are trimmed by trim-events.sql, run right after in the same transaction.
-- :id :errors
UPDATE offload_jobs
   SET errors = (SELECT json_group_array(json(value))
                   FROM (SELECT value FROM json_each(offload_jobs.errors)
                          WHERE key >= json_array_length(offload_jobs.errors) - :errors
                          ORDER BY key))
 WHERE id = :id AND json_array_length(errors) > :errors;
