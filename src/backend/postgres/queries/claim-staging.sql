-- Claim when scheduled or retrying jobs of these queues are due (claim.sql found some): offload.claim()
-- (migrations) stages them to queued, then claims like claim.sql, in one round trip and one
-- transaction, writing the state events of both steps.
-- $1 queues text[], $2 limit int, $3 worker text, $4 lease_until bigint, $5 now bigint,
-- $6 channel text (the schema's NOTIFY channel)
-- Returns the claimed rows, in no particular order (the caller sorts).
SELECT * FROM offload.claim($1::text[], $2::int, $3::text, $4::bigint, $5::bigint, $6::text);
