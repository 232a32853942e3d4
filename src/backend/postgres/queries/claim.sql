-- Claim up to $2 due jobs of the given queues: stages due scheduled and retrying jobs, then moves
-- queued jobs to active in priority DESC, run_at, id order with FOR UPDATE SKIP LOCKED, each with
-- attempt + 1 and a fresh random lease token, and writes their state events. Both steps live in
-- offload.claim() (migrations) so they take one round trip and one transaction.
-- $1 queues text[], $2 limit int, $3 worker text, $4 lease_until bigint, $5 now bigint,
-- $6 channel text (the schema's NOTIFY channel)
-- Returns the claimed rows, in no particular order (the caller sorts).
SELECT * FROM offload.claim($1::text[], $2::int, $3::text, $4::bigint, $5::bigint, $6::text);
