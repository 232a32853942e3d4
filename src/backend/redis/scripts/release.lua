-- Hand active jobs back on graceful shutdown: queued again with the attempt not counted, or
-- cancelled when a cancel was requested meanwhile.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5…] pairs: id, token
-- Returns one integer per lease: 1 queued again, 2 cancelled, 0 LEASE_LOST.
local out = {}
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'token', 'queue', 'attempt', 'key', 'cancel', 'priority', 'run_at')
  if f[1] == 'active' and f[2] == ARGV[i + 1] then
    redis.call('ZREM', P .. 'active', id)
    if f[6] == '1' then
      finish(id, f[3], 'active', 'cancelled', f[4], f[5])
      out[#out + 1] = 2
    else
      local attempt = redis.call('HINCRBY', k, 'attempt', -1)
      redis.call('HDEL', k, 'worker', 'token', 'lease_until', 'finished_at')
      queue_job(id, f[3], f[7], f[8])
      set_state(id, f[3], 'active', 'queued', attempt)
      out[#out + 1] = 1
    end
  else
    out[#out + 1] = 0
  end
end
flush()
return out
