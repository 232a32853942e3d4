-- Mark active jobs succeeded, each only if the caller still holds its lease (fencing).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5…] triples: id, token, result (JSON)
-- Returns one integer per ack: 1 OK, 0 LEASE_LOST (nothing written for that job).
local out = {}
local done = {}
local gone = {}
for i = 5, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'token', 'queue', 'attempt', 'key')
  if f[1] == 'active' and f[2] == token then
    count(f[3], 'active', -1)
    count(f[3], 'succeeded', 1)
    redis.call('HSET', k, 'state', 'succeeded', 'updated_at', NOW, 'finished_at', NOW, 'result', ARGV[i + 2])
    redis.call('HDEL', k, 'token', 'lease_until')
    state_event(id, 'succeeded', f[4])
    release_key(id, f[5])
    gone[#gone + 1] = id
    done[#done + 1] = NOW
    done[#done + 1] = id
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #gone > 0 then
  for i = 1, #gone, 1000 do redis.call('ZREM', P .. 'active', unpack(gone, i, math.min(i + 999, #gone))) end
  zadd_many(P .. 'done:succeeded', done)
end
flush()
return out
