-- Claim up to `limit` queued jobs of the given queues, in priority DESC, run_at ASC, id ASC
-- order, after staging the due scheduled/retrying jobs of those queues. Each claimed job becomes
-- active with attempt + 1, its own lease token (fencing), lease_until and worker.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] limit  ARGV[6] worker  ARGV[7] lease_until  ARGV[8] token base (random, per call)
-- ARGV[9…] queue names
-- Returns a flat array: index, HGETALL array as it was before the claim, index, …; the
-- caller applies the claim's own changes (state active, attempt + 1, token base .. index,
-- lease_until, worker, started_at = updated_at = now, cancel 0) and sorts into claim order.
-- Four calls per job (HGETALL, HSET, and its event: RPUSH + XADD); the queue pops are batched.
local limit = tonumber(ARGV[5])
local worker, lease_until, token_base = ARGV[6], ARGV[7], ARGV[8]
local STAGE_BATCH = 1000

-- 1. Due jobs of these queues become queued.
for qi = 9, #ARGV do
  local queue = ARGV[qi]
  local due = redis.call('ZRANGEBYSCORE', P .. 'due:' .. queue, '-inf', NOW, 'LIMIT', 0, STAGE_BATCH)
  if #due > 0 then
    redis.call('ZREM', P .. 'due:' .. queue, unpack(due))
    for _, id in ipairs(due) do
      local f = redis.call('HMGET', jobkey(id), 'state', 'priority', 'run_at', 'attempt')
      if f[1] then
        queue_job(id, queue, f[2], f[3])
        set_state(id, queue, f[1], 'queued', f[4])
      end
    end
  end
end

-- 2. Candidates: per queue, the best `limit` across its priority levels (highest first).
--    With one queue the order is final, so the candidates are popped at once.
local single = #ARGV == 9
local picked = {}
for qi = 9, #ARGV do
  local queue = ARGV[qi]
  local taken = 0
  for _, prio in ipairs(redis.call('ZREVRANGE', P .. 'prios:' .. queue, 0, -1)) do
    if taken >= limit then break end
    local zkey = P .. 'queued:' .. queue .. ':' .. prio
    local rows
    if single then
      rows = redis.call('ZPOPMIN', zkey, limit - taken)
    else
      rows = redis.call('ZRANGE', zkey, 0, limit - taken - 1, 'WITHSCORES')
    end
    if #rows == 0 then redis.call('ZREM', P .. 'prios:' .. queue, prio) end
    for i = 1, #rows, 2 do
      picked[#picked + 1] = { id = rows[i], run_at = tonumber(rows[i + 1]), prio = tonumber(prio), zkey = zkey, queue = queue }
      taken = taken + 1
    end
  end
end
if not single then
  table.sort(picked, function(a, b)
    if a.prio ~= b.prio then return a.prio > b.prio end
    if a.run_at ~= b.run_at then return a.run_at < b.run_at end
    return a.id < b.id
  end)
end

-- 3. Activate. Written out rather than through set_state: this loop is the hot path of a drain.
local out = {}
local active = {}
local n = math.min(limit, #picked)
for i = 1, n do
  local c = picked[i]
  if not single then redis.call('ZREM', c.zkey, c.id) end
  local k = jobkey(c.id)
  local fields = redis.call('HGETALL', k)
  local attempt = 0
  for f = 1, #fields, 2 do
    if fields[f] == 'attempt' then
      attempt = tonumber(fields[f + 1])
      break
    end
  end
  attempt = attempt + 1
  redis.call('HSET', k, 'state', 'active', 'updated_at', NOW, 'attempt', attempt, 'token', token_base .. i,
    'lease_until', lease_until, 'worker', worker, 'started_at', NOW, 'cancel', 0)
  count(c.queue, 'queued', -1)
  count(c.queue, 'active', 1)
  state_event(c.id, 'active', attempt)
  active[#active + 1] = lease_until
  active[#active + 1] = c.id
  out[#out + 1] = i
  out[#out + 1] = fields
end
zadd_many(P .. 'active', active)
flush()
return out
