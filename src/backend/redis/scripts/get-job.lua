-- One job's record, without its events (lib.lua record).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua, unused)   ARGV[5] id
-- Returns the record's name/value array; empty when there is no such job.
return record(jobkey(ARGV[5]))
