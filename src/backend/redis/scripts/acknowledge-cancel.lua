-- An active job whose handler stopped after a cancel request ends cancelled.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] id  ARGV[6] token
-- Returns 1 OK, 0 LEASE_LOST. A repeat is OK and writes nothing (the job keeps the token: fail.lua).
local id = ARGV[5]
local f = redis.call('HMGET', jobkey(id), 'state', 'token', 'queue', 'attempt', 'key')
if f[2] ~= ARGV[6] then return 0 end
if f[1] == 'cancelled' then return 1 end
if f[1] ~= 'active' then return 0 end
redis.call('ZREM', P .. 'active', id)
finish(id, f[3], 'active', 'cancelled', f[4], f[5], nil, true)
flush('quiet')
return 1
