-- Delete finished jobs past their retention, with their events (fields of the job's hash); up to
-- `chunk` in all per call, over the three final states. The global feed is a capped window of
-- its own and is left to its cap.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] succeeded_before  ARGV[6] failed_before  ARGV[7] cancelled_before  ARGV[8] chunk
-- Returns { deleted, more } where more = 1 when the chunk was used up (call again).
-- A queue left with no job at all is forgotten: its name in `queues`, its counters and its
-- priority levels (an app that names queues per tenant would otherwise keep every name it ever
-- used). The next enqueue into it starts it afresh.

-- Empty means every counter is 0 and, so that a counter off by one (a job hash deleted by hand)
-- can never make a waiting job unclaimable, no due or queued index of the queue holds a job.
local function forget_if_empty(queue)
  for _, n in ipairs(redis.call('HVALS', P .. 'counts:' .. queue)) do
    if n ~= '0' then return end
  end
  if redis.call('EXISTS', P .. 'due:' .. queue) == 1 then return end
  for _, prio in ipairs(redis.call('ZRANGE', P .. 'prios:' .. queue, 0, -1)) do
    if redis.call('EXISTS', P .. 'queued:' .. queue .. ':' .. prio) == 1 then return end
  end
  redis.call('DEL', P .. 'counts:' .. queue, P .. 'prios:' .. queue)
  redis.call('SREM', KEYS[1], queue)
end

local chunk = tonumber(ARGV[8])
local deleted, more = 0, 0
local befores = { succeeded = ARGV[5], failed = ARGV[6], cancelled = ARGV[7] }
local touched = {}
for _, state in ipairs({ 'succeeded', 'failed', 'cancelled' }) do
  if deleted == chunk then
    more = 1
    break
  end
  local done = P .. 'done:' .. state
  local ids = redis.call('ZRANGEBYSCORE', done, '-inf', '(' .. befores[state], 'LIMIT', 0, chunk - deleted)
  if deleted + #ids == chunk then more = 1 end
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', jobkey(id), 'queue', 'task', 'key')
    local queue = f[1]
    -- A field of the keys hash that still names this job goes with it: a process on code from
    -- before keys were per task frees only the bare key when it ends a job that newer code
    -- enqueued, and the field it leaves (read as free, key_holder) would otherwise stay for good.
    if f[3] and f[3] ~= '' then
      for _, field in ipairs({ key_field(f[2] or '', f[3]), f[3] }) do
        if redis.call('HGET', P .. 'keys', field) == id then redis.call('HDEL', P .. 'keys', field) end
      end
    end
    -- events:<id> is the per-job event list of the first layout (before events moved into the
    -- job's hash); deleting it costs nothing when it is not there. UNLINK, not DEL: a job's hash
    -- holds all its events, and freeing one of 50,000 log lines in the script took 30 ms of the
    -- server's time; UNLINK frees a large value on a background thread.
    redis.call('UNLINK', jobkey(id), P .. 'events:' .. id)
    redis.call('ZREM', done, id)
    redis.call('ZREM', P .. 'jobs', id)
    if queue then
      count(queue, state, -1)
      touched[queue] = true
    end
    deleted = deleted + 1
  end
end
flush(false)
for queue in pairs(touched) do forget_if_empty(queue) end
return { deleted, more }
