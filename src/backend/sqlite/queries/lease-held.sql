-- Whether the caller still holds the lease of an active job.
-- :id :token
SELECT 1 AS held FROM offload_jobs WHERE id = :id AND state = 'active' AND lease_token = :token;
