-- Newest first (ids are time-ordered UUIDv7), optionally filtered by state, queue and task, from
-- an id cursor. Looks at no more than `budget` ids per call so a sparse filter never blocks the
-- server for long; the caller continues from the returned cursor.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua, unused)
-- ARGV[5] before ("" = from the newest)  ARGV[6] state  ARGV[7] queue  ARGV[8] task ("" any)
-- ARGV[9] limit  ARGV[10] budget
-- Returns { matches (records: lib.lua record), last id looked at ("" none), exhausted (1/0) }.
local before, state, queue, task = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local limit, budget = tonumber(ARGV[9]), tonumber(ARGV[10])
local max = '+'
if before ~= '' then max = '(' .. before end
local ids = redis.call('ZREVRANGEBYLEX', P .. 'jobs', max, '-', 'LIMIT', 0, budget)
local matches = {}
local last = ''
for _, id in ipairs(ids) do
  last = id
  local f = redis.call('HMGET', jobkey(id), 'state', 'queue', 'task')
  if f[1] and (state == '' or f[1] == state) and (queue == '' or f[2] == queue) and (task == '' or f[3] == task) then
    matches[#matches + 1] = record(jobkey(id))
    if #matches >= limit then return { matches, last, 0 } end
  end
end
local exhausted = 0
if #ids < budget then exhausted = 1 end
return { matches, last, exhausted }
