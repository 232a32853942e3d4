-- Mark a batch of active jobs succeeded, each only if the caller still holds its lease.
-- :acks (JSON array of [id, lease_token, result JSON text]) :now
-- Returns the ids and tokens that were completed; an ack not among them lost its lease (LEASE_LOST), or
-- was completed before (complete-repeated.sql): a succeeded row keeps the token that completed it.
UPDATE offload_jobs
   SET state = 'succeeded', result = a.value ->> 2, finished_at = :now, updated_at = :now,
       lease_until = NULL
  FROM json_each(:acks) AS a
 WHERE offload_jobs.id = a.value ->> 0 AND offload_jobs.state = 'active' AND offload_jobs.lease_token = a.value ->> 1
RETURNING offload_jobs.id, offload_jobs.lease_token;
