-- Jobs per queue and state (the counters kept by every transition, O(1) per queue), and the run
-- time of the oldest queued job (the head of each priority level).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua, unused)
-- Returns one entry per queue: { queue, HGETALL of counts:<queue>, oldest run_at or "" }.
local out = {}
for _, queue in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local oldest = nil
  for _, prio in ipairs(redis.call('ZRANGE', P .. 'prios:' .. queue, 0, -1)) do
    local head = redis.call('ZRANGE', P .. 'queued:' .. queue .. ':' .. prio, 0, 0, 'WITHSCORES')
    if head[2] and (not oldest or tonumber(head[2]) < tonumber(oldest)) then oldest = head[2] end
  end
  out[#out + 1] = { queue, redis.call('HGETALL', P .. 'counts:' .. queue), oldest or '' }
end
return out
