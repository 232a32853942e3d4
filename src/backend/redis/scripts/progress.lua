-- Record progress of an active job (and its event), if the caller still holds its lease.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] id  ARGV[6] token  ARGV[7] progress  ARGV[8] message ("-" none, else "+" .. text)
-- ARGV[9] event data (JSON)
-- Returns 1 OK, 0 LEASE_LOST.
local id = ARGV[5]
local k = jobkey(id)
local f = redis.call('HMGET', k, 'state', 'token')
if f[1] ~= 'active' or f[2] ~= ARGV[6] then return 0 end
redis.call('HSET', k, 'progress', ARGV[7])
if ARGV[8] == '-' then
  redis.call('HDEL', k, 'progress_message')
else
  redis.call('HSET', k, 'progress_message', string.sub(ARGV[8], 2))
end
add_event(id, 'progress', ARGV[9])
flush('quiet')
return 1
