-- Claim up to `limit` queued jobs of the given queues, in priority DESC, run_at ASC, id ASC
-- order, after staging the due scheduled/retrying jobs of those queues. Each claimed job becomes
-- active with attempt + 1, its own lease token (fencing), lease_until and worker.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] limit  ARGV[6] worker  ARGV[7] lease_until  ARGV[8] token base (random, per call)
-- ARGV[9…] queue names
-- Returns one HGETALL array per claimed job (the caller sorts them into claim order).
local limit = tonumber(ARGV[5])
local worker, lease_until, token_base = ARGV[6], ARGV[7], ARGV[8]
local STAGE_BATCH = 1000

-- 1. Due jobs of these queues become queued.
for qi = 9, #ARGV do
  local queue = ARGV[qi]
  local due = redis.call('ZRANGEBYSCORE', P .. 'due:' .. queue, '-inf', NOW, 'LIMIT', 0, STAGE_BATCH)
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', jobkey(id), 'state', 'priority', 'run_at', 'attempt')
    redis.call('ZREM', P .. 'due:' .. queue, id)
    if f[1] then
      queue_job(id, queue, f[2], f[3])
      set_state(id, queue, f[1], 'queued', f[4])
    end
  end
end

-- 2. Candidates: per queue, the best `limit` across its priority levels (highest first).
local picked = {}
for qi = 9, #ARGV do
  local queue = ARGV[qi]
  local levels = redis.call('ZREVRANGE', P .. 'prios:' .. queue, 0, -1)
  local taken = 0
  for _, prio in ipairs(levels) do
    if taken >= limit then break end
    local zkey = P .. 'queued:' .. queue .. ':' .. prio
    local rows = redis.call('ZRANGE', zkey, 0, limit - taken - 1, 'WITHSCORES')
    if #rows == 0 then
      redis.call('ZREM', P .. 'prios:' .. queue, prio)
    end
    for i = 1, #rows, 2 do
      picked[#picked + 1] = { id = rows[i], run_at = tonumber(rows[i + 1]), prio = tonumber(prio), zkey = zkey, queue = queue }
      taken = taken + 1
    end
  end
end
if #ARGV > 9 then
  table.sort(picked, function(a, b)
    if a.prio ~= b.prio then return a.prio > b.prio end
    if a.run_at ~= b.run_at then return a.run_at < b.run_at end
    return a.id < b.id
  end)
end

-- 3. Activate.
local out = {}
local active = {}
for i = 1, math.min(limit, #picked) do
  local c = picked[i]
  local k = jobkey(c.id)
  redis.call('ZREM', c.zkey, c.id)
  local attempt = redis.call('HINCRBY', k, 'attempt', 1)
  redis.call('HSET', k, 'token', token_base .. i, 'lease_until', lease_until, 'worker', worker,
    'started_at', NOW, 'cancel', 0)
  set_state(c.id, c.queue, 'queued', 'active', attempt)
  active[#active + 1] = lease_until
  active[#active + 1] = c.id
  out[i] = redis.call('HGETALL', k)
end
zadd_many(P .. 'active', active)
flush()
return out
