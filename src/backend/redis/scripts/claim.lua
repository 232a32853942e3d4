-- Claim up to `limit` queued jobs of the given queues, in priority DESC, run_at ASC, id ASC
-- order, after staging the due scheduled/retrying jobs of those queues. Each claimed job becomes
-- active with attempt + 1, its own lease token (fencing), lease_until and worker.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] limit  ARGV[6] worker  ARGV[7] lease_until  ARGV[8] token base (random, per call)
-- ARGV[9] number of fields to read, ARGV[10…] those field names (attempt first), then the queue names
-- Returns a flat array: index, packed fields, index, …, and a last element 1 when due jobs it staged
-- may be left queued (see the end). Packed fields are the HMGET values as they
-- were before the claim, in one string: separated by byte 255, an absent field written as byte
-- 254. Neither byte occurs in UTF-8 text, and every value is UTF-8 (ioredis writes JS strings so),
-- so the split is exact; one string per job instead of an array of 14 costs less to convert here
-- and to decode in the worker (RESP decoding per item was a sixth of its CPU). The caller applies the claim's own changes (state active, attempt + 1, token base .. index,
-- lease_until, worker, started_at = now) and sorts into claim order.
-- Two calls per job (HMGET, and one HSET that carries its event); the queue pops are batched.
-- This is the hot path of a drain: no table per job, and every number is formatted once, with
-- %d (Lua's own number-to-string goes through %.14g, which costs more than the HSET it feeds).
local limit = tonumber(ARGV[5])
local worker, lease_until, token_base = ARGV[6], ARGV[7], ARGV[8]
local nfields = tonumber(ARGV[9])
local read = {}
for i = 1, nfields do read[i] = ARGV[9 + i] end
local FIRST_QUEUE = 10 + nfields
local STAGE_BATCH = 1000
-- Before the first write of each step: no run starts on a full server, which would refuse its
-- heartbeats and outcome (refuse_when_full, lib.lua).

-- 1. Due jobs of these queues become queued.
local staged = 0
for qi = FIRST_QUEUE, #ARGV do
  local queue = ARGV[qi]
  local due = redis.call('ZRANGEBYSCORE', P .. 'due:' .. queue, '-inf', NOW, 'LIMIT', 0, STAGE_BATCH)
  if #due > 0 then
    refuse_when_full()
    redis.call('ZREM', P .. 'due:' .. queue, unpack(due))
    staged = staged + #due
    for _, id in ipairs(due) do
      local f = redis.call('HMGET', jobkey(id), 'state', 'priority', 'run_at', 'attempt')
      if f[1] then
        queue_job(id, queue, f[2], f[3])
        set_state(id, queue, f[1], 'queued', f[4])
      end
    end
  end
end

-- Claim order, priority DESC, run_at ASC, id ASC (ids are UUIDv7 text: their order is their age),
-- as a comparator of indexes into parallel lists: one function per sort, no call per comparison.
local function in_claim_order(prio, run, id)
  return function(a, b)
    if prio[a] ~= prio[b] then return prio[a] > prio[b] end
    if run[a] ~= run[b] then return run[a] < run[b] end
    return id[a] < id[b]
  end
end

-- 2. The queues to take candidates from. Over more queues than the claim's limit, only those whose
--    best job ranks among the `limit` best of all the queues' best jobs can give this claim a job:
--    any other queue's jobs all rank below `limit` jobs of other queues. So each queue's best job
--    is read first (two calls; an empty level met on the way is dropped from `prios`, as below),
--    and candidates come from at most `limit` queues: a claim of 25 over 1,000 queues read and
--    sorted 25,000 candidates (about 100 ms of the server), now 1,000 heads and 625 candidates.
local from = {}
for qi = FIRST_QUEUE, #ARGV do from[#from + 1] = ARGV[qi] end
if #from > limit then
  local hq, hprio, hrun, hid, heads = {}, {}, {}, {}, {}
  for _, queue in ipairs(from) do
    local prio_key = P .. 'prios:' .. queue
    while true do
      local level = redis.call('ZREVRANGE', prio_key, 0, 0)[1]
      if not level then break end
      local row = redis.call('ZRANGE', P .. 'queued:' .. queue .. ':' .. level, 0, 0, 'WITHSCORES')
      if #row > 0 then
        local h = #heads + 1
        hq[h], hprio[h], hrun[h], hid[h], heads[h] = queue, tonumber(level), tonumber(row[2]), row[1], h
        break
      end
      refuse_when_full()
      redis.call('ZREM', prio_key, level)
    end
  end
  table.sort(heads, in_claim_order(hprio, hrun, hid))
  from = {}
  for i = 1, math.min(limit, #heads) do from[i] = hq[heads[i]] end
end

-- 3. Candidates: per queue, the best `limit` across its priority levels (highest first), as
--    parallel lists of id, queue and (several queues only) index key, priority and run_at.
--    With one queue the order is final, so the candidates are popped at once.
local single = #ARGV == FIRST_QUEUE
local ids, queues, zkeys, prios, runs = {}, {}, {}, {}, {}
--    The levels are read a page of `limit` at a time: a claim needs at most that many levels with
--    jobs, and a queue may have thousands. A level found empty is dropped from `prios`, which
--    moves the levels after it up the ranking, so the next page starts that much earlier.
for _, queue in ipairs(from) do
  local prio_key = P .. 'prios:' .. queue
  local taken, start = 0, 0
  while taken < limit do
    local levels = redis.call('ZREVRANGE', prio_key, start, start + limit - 1)
    if #levels == 0 then break end
    refuse_when_full()
    local dropped = 0
    for _, prio in ipairs(levels) do
      if taken >= limit then break end
      local zkey = P .. 'queued:' .. queue .. ':' .. prio
      local rows
      if single then
        rows = redis.call('ZPOPMIN', zkey, limit - taken)
      else
        rows = redis.call('ZRANGE', zkey, 0, limit - taken - 1, 'WITHSCORES')
      end
      if #rows == 0 then
        redis.call('ZREM', prio_key, prio)
        dropped = dropped + 1
      end
      for i = 1, #rows, 2 do
        local j = #ids + 1
        ids[j] = rows[i]
        queues[j] = queue
        if not single then
          zkeys[j] = zkey
          prios[j] = tonumber(prio)
          runs[j] = tonumber(rows[i + 1])
        end
        taken = taken + 1
      end
    end
    start = start + #levels - dropped
  end
end
local order = {}
for j = 1, #ids do order[j] = j end
if not single then
  table.sort(order, in_claim_order(prios, runs, ids))
end

-- 4. Activate.
local out = {}
local active = {}
local n = math.min(limit, #ids)
for i = 1, n do
  local j = order[i]
  local id, queue = ids[j], queues[j]
  if not single then redis.call('ZREM', zkeys[j], id) end
  local k = jobkey(id)
  local fields = redis.call('HMGET', k, unpack(read))
  if not fields[1] then
    -- Its hash is gone (deleted by hand, or evicted under a policy docs/redis.md warns against):
    -- nothing to run. It leaves the indexes and counts here, and the rest of the batch is still
    -- claimed; an error after the pops above would strand them, as a script is not rolled back.
    count(queue, 'queued', -1)
    redis.call('ZREM', P .. 'jobs', id)
  else
    local attempt = string.format('%d', tonumber(fields[1]) + 1)
    local ef, ev = event_fields(id, 'state', state_json('active', attempt))
    redis.call('HSET', k, 'state', 'active', 'attempt', attempt, 'token', token_base .. string.format('%d', i),
      'lease_until', lease_until, 'worker', worker, 'started_at', NOW, ef, ev, 'last_event', string.sub(ef, 2))
    count(queue, 'queued', -1)
    count(queue, 'active', 1)
    active[#active + 1] = lease_until
    active[#active + 1] = id
    for f = 1, nfields do
      if not fields[f] then fields[f] = '\254' end
    end
    out[#out + 1] = i
    out[#out + 1] = table.concat(fields, '\255')
  end
end
zadd_many(P .. 'active', active)
-- A claim is quiet (it brings nothing to claim) unless it staged due jobs and may have left some
-- queued: a full claim does not say it took them all. Those jobs are no longer due, so no other
-- worker's look-ahead (next-due.lua) finds them, and one that looked after this claim sleeps until
-- its poll beside them: it must hear that there is work. A short claim took every queued job of
-- its queues.
local left = staged > 0 and n >= limit
if left then
  flush()
  out[#out + 1] = 1
else
  flush('quiet')
end
return out
