-- Which of these acks were completed before by the same lease (a repeated acknowledgement is OK
-- and changes nothing). Asked only about the acks complete.sql did not complete.
-- :acks (JSON array of [id, lease_token])
-- Returns the ids and tokens.
SELECT j.id, j.lease_token FROM json_each(:acks) AS a
  JOIN offload_jobs j ON j.id = a.value ->> 0 AND j.lease_token = a.value ->> 1 AND j.state = 'succeeded';
