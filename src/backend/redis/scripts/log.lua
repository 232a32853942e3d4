-- Append a log line to an active job's events, if the caller still holds its lease.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] id  ARGV[6] token  ARGV[7] data (JSON)
-- Returns 1 OK, 0 LEASE_LOST.
local id = ARGV[5]
local f = redis.call('HMGET', jobkey(id), 'state', 'token')
if f[1] ~= 'active' or f[2] ~= ARGV[6] then return 0 end
add_event(id, 'log', ARGV[7])
flush('quiet')
return 1
