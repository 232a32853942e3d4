-- The state and newest event id of each job of a list, for many waiters at once (Backend.peekJobs).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua, unused)   ARGV[5…] ids
-- Returns a flat array id, state, newest event id for each stored job (ids of no job left out).
-- A job hash written before "last_event" existed has its events' ids read from its field names.
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'last_event')
  if f[1] then
    local last = f[2]
    if not last then
      local newest = 0
      for _, name in ipairs(redis.call('HKEYS', k)) do
        if string.sub(name, 1, 1) == '~' then
          local n = tonumber(string.sub(name, 2))
          if n and n > newest then newest = n end
        end
      end
      last = string.format('%d', newest)
    end
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = last
  end
end
return out
