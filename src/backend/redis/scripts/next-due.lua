-- The earliest run time of a scheduled or retrying job in the given queues.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua, unused)   ARGV[5…] queue names
-- Returns the run_at as a string, or "" when none is waiting.
local best = nil
for i = 5, #ARGV do
  local head = redis.call('ZRANGE', P .. 'due:' .. ARGV[i], 0, 0, 'WITHSCORES')
  if head[2] and (not best or tonumber(head[2]) < tonumber(best)) then best = head[2] end
end
return best or ''
