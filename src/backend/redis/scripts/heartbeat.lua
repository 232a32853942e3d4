-- Extend the leases the caller still holds.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] lease_until  ARGV[6…] pairs: id, token
-- Returns one integer per lease: 0 lost, 1 held, 2 held and asked to cancel.
local lease_until = ARGV[5]
local out = {}
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'token', 'cancel')
  if f[1] == 'active' and f[2] == ARGV[i + 1] then
    redis.call('HSET', k, 'lease_until', lease_until)
    redis.call('ZADD', P .. 'active', lease_until, id)
    if f[3] == '1' then out[#out + 1] = 2 else out[#out + 1] = 1 end
  else
    out[#out + 1] = 0
  end
end
return out
