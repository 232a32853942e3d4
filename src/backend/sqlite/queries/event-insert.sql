-- Append one event to the feed.
-- :job_id :type :data (JSON object) :at
INSERT INTO offload_events (job_id, type, data, at) VALUES (:job_id, :type, :data, :at);
