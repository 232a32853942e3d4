-- :id
SELECT * FROM offload_jobs WHERE id = :id;
