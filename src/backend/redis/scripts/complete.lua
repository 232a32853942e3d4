-- Mark active jobs succeeded, each only if the caller still holds its lease (fencing).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5…] triples: id, token, result (JSON)
-- Returns one integer per ack: 1 OK, 0 LEASE_LOST (nothing written for that job).
local out = {}
for i = 5, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'token', 'queue', 'attempt', 'key')
  if f[1] == 'active' and f[2] == token then
    redis.call('HSET', k, 'result', ARGV[i + 2])
    redis.call('ZREM', P .. 'active', id)
    finish(id, f[3], 'active', 'succeeded', f[4], f[5])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
flush()
return out
