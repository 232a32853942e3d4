-- One job by id.
-- $1 id text
-- Returns the row, or none. Columns named, not `*`: this statement is prepared on each pooled
-- connection, and a prepared `*` fails ("cached plan must not change result type") once a later
-- migration adds a column while processes of this version still run (a rolling upgrade).
SELECT id, task, queue, state, payload, priority, run_at, attempt, max_attempts, key, owner, worker, lease_token, lease_until, cancel_requested, progress, progress_message, result, errors, created_at, updated_at, started_at, finished_at
  FROM offload.jobs WHERE id = $1;
