-- One job by id.
-- $1 id text
-- Returns the row, or none.
SELECT * FROM offload.jobs WHERE id = $1;
