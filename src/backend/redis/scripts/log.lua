-- Append a log line to an active job's events, if the caller still holds its lease. A run keeps
-- its first ARGV[8] lines; the next is ARGV[9] (a line that says so), later ones are not kept.
-- Field "run_logs" = "<lease token>\t<lines written>" counts them; a new run's token differs.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] id  ARGV[6] token  ARGV[7] data (JSON)
-- ARGV[8] max lines  ARGV[9] data of the cap line (JSON)
-- Returns 1 OK, 0 LEASE_LOST.
local id, token = ARGV[5], ARGV[6]
local k = jobkey(id)
local f = redis.call('HMGET', k, 'state', 'token', 'run_logs')
if f[1] ~= 'active' or f[2] ~= token then return 0 end
local tag = token .. '\t'
local lines = 1
if f[3] and string.sub(f[3], 1, #tag) == tag then lines = tonumber(string.sub(f[3], #tag + 1)) + 1 end
local max = tonumber(ARGV[8])
if lines > max + 1 then return 1 end
local data = ARGV[7]
if lines > max then data = ARGV[9] end
local ef, ev = event_fields(id, 'log', data)
redis.call('HSET', k, ef, ev, 'last_event', string.sub(ef, 2), 'run_logs', tag .. string.format('%d', lines))
flush('quiet')
return 1
