-- Record progress of an active job (and its event), if the caller still holds its lease. Progress
-- is a gauge: the run's newest progress event replaces its previous one, in the job's hash and in
-- the global feed (a progress script writes one event, so its feed entry holds it alone).
-- Field "run_progress" = "<lease token>\t<event id>" names that event; a new run's token differs.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] id  ARGV[6] token  ARGV[7] progress  ARGV[8] message ("-" none, else "+" .. text)
-- ARGV[9] event data (JSON)
-- Returns 1 OK, 0 LEASE_LOST.
local id, token = ARGV[5], ARGV[6]
local k = jobkey(id)
local f = redis.call('HMGET', k, 'state', 'token', 'run_progress')
if f[1] ~= 'active' or f[2] ~= token then return 0 end
local tag = token .. '\t'
if f[3] and string.sub(f[3], 1, #tag) == tag then
  local previous = string.sub(f[3], #tag + 1)
  redis.call('HDEL', k, '~' .. previous)
  redis.call('XDEL', P .. 'events', previous .. '-0')
end
local ef, ev = event_fields(id, 'progress', ARGV[9])
redis.call('HSET', k, 'progress', ARGV[7], ef, ev, 'last_event', string.sub(ef, 2), 'run_progress', tag .. string.sub(ef, 2))
if ARGV[8] == '-' then
  redis.call('HDEL', k, 'progress_message')
else
  redis.call('HSET', k, 'progress_message', string.sub(ARGV[8], 2))
end
flush('quiet')
return 1
