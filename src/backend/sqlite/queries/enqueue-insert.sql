-- Insert one new job; state is scheduled when it is not yet due.
-- :id :task :queue :payload :priority :run_at :max_attempts :key :owner :now
-- Returns id and state.
INSERT INTO offload_jobs (id, task, queue, state, payload, priority, run_at, max_attempts, key, owner, created_at, updated_at)
VALUES (:id, :task, :queue, CASE WHEN :run_at > :now THEN 'scheduled' ELSE 'queued' END,
        :payload, :priority, :run_at, :max_attempts, :key, :owner, :now, :now)
RETURNING id, state;
