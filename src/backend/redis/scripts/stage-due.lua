-- Scheduled and retrying jobs whose run time has come become queued, in every queue, up to
-- `chunk` in all per call (not per queue: a call's length must not grow with the number of queues).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] chunk
-- Returns { staged, more } where more = 1 when the chunk was used up (call again).
local chunk = tonumber(ARGV[5])
local staged, taken, more = 0, 0, 0
for _, queue in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if taken == chunk then
    more = 1
    break
  end
  local due = redis.call('ZRANGEBYSCORE', P .. 'due:' .. queue, '-inf', NOW, 'LIMIT', 0, chunk - taken)
  taken = taken + #due
  if taken == chunk then more = 1 end
  if #due > 0 then refuse_when_full() end -- as claim.lua: nothing moves on to a run on a full server
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', jobkey(id), 'state', 'priority', 'run_at', 'attempt')
    redis.call('ZREM', P .. 'due:' .. queue, id)
    if f[1] then
      queue_job(id, queue, f[2], f[3])
      set_state(id, queue, f[1], 'queued', f[4])
      staged = staged + 1
    end
  end
end
flush()
return { staged, more }
