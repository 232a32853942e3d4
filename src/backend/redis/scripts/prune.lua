-- Delete finished jobs past their retention, with their events; up to `chunk` per state per call.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] succeeded_before  ARGV[6] failed_before  ARGV[7] cancelled_before  ARGV[8] chunk
-- Returns { deleted, more } where more = 1 when a state had a full chunk (call again).
local chunk = tonumber(ARGV[8])
local deleted, more = 0, 0
local befores = { succeeded = ARGV[5], failed = ARGV[6], cancelled = ARGV[7] }
for state, before in pairs(befores) do
  local done = P .. 'done:' .. state
  local ids = redis.call('ZRANGEBYSCORE', done, '-inf', '(' .. before, 'LIMIT', 0, chunk)
  if #ids == chunk then more = 1 end
  for _, id in ipairs(ids) do
    local queue = redis.call('HGET', jobkey(id), 'queue')
    local entries = {}
    for _, event in ipairs(redis.call('LRANGE', P .. 'events:' .. id, 0, -1)) do
      entries[#entries + 1] = string.match(event, '^%d+') .. '-0'
    end
    for i = 1, #entries, 1000 do
      redis.call('XDEL', P .. 'events', unpack(entries, i, math.min(i + 999, #entries)))
    end
    redis.call('DEL', jobkey(id), P .. 'events:' .. id)
    redis.call('ZREM', done, id)
    redis.call('ZREM', P .. 'jobs', id)
    if queue then count(queue, state, -1) end
    deleted = deleted + 1
  end
end
flush(false)
return { deleted, more }
