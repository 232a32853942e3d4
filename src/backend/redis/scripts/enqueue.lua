-- Insert a batch of jobs atomically: scheduled (run_at > now) or queued. A job whose idempotency
-- key an unfinished job of its task holds (or an earlier job of this batch) is not inserted; that
-- job is returned instead. When any id already exists, nothing of the batch is written.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] n, then 9 per job: id, task, queue, payload, priority, run_at, max_attempts,
--         key ("-" none, else "+" .. key), owner ("-" none, else "+" .. owner)
-- Per inserted job one call: the HSET that also carries its first event. The id check is one
-- EXISTS for the whole batch; index writes are one ZADD per index.
-- Returns n when every job was inserted (the common case: no array to build and decode), else one
-- entry per job: 1 when inserted, else the holder's record (lib.lua record).
-- Error reply "OFFLOAD_DUPLICATE_ID <id>" when an id exists: nothing written.
local n = tonumber(ARGV[5])
local holders = {}
local batch_keys = {}
local batch_ids = {}
local fresh = {} -- keys of the jobs to insert, for one EXISTS
for i = 0, n - 1 do
  local o = 6 + i * 9
  local id, key = ARGV[o], ARGV[o + 7]
  local holder = false
  if key ~= '-' then
    local task, bare = ARGV[o + 1], string.sub(key, 2)
    key = key_field(task, bare) -- keys are per task
    holder = batch_keys[key] or key_holder(task, bare)
  end
  if holder then
    holders[i] = holder
  else
    if batch_ids[id] then return redis.error_reply('OFFLOAD_DUPLICATE_ID ' .. id) end
    batch_ids[id] = true
    fresh[#fresh + 1] = jobkey(id)
    if key ~= '-' then batch_keys[key] = id end
  end
end
for i = 1, #fresh, 1000 do
  local chunk = { unpack(fresh, i, math.min(i + 999, #fresh)) }
  if redis.call('EXISTS', unpack(chunk)) > 0 then
    for _, k in ipairs(chunk) do
      if redis.call('EXISTS', k) == 1 then
        return redis.error_reply('OFFLOAD_DUPLICATE_ID ' .. string.sub(k, #P + 5))
      end
    end
  end
end

local queues = {}
local lex = {}
local indexed = {} -- index key suffix → score/member pairs, written with one ZADD each
local now = tonumber(NOW)
for i = 0, n - 1 do
  if not holders[i] then
    local o = 6 + i * 9
    local id, task, queue, payload = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
    local priority, run_at, max_attempts, key, owner = ARGV[o + 4], ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
    local state = 'queued'
    if tonumber(run_at) > now then state = 'scheduled' end
    local k = jobkey(id)
    local ef, ev = event_fields(id, 'state', state_json(state, '0'))
    -- One HSET, its arguments written out: no table per job on this path.
    redis.call('HSET', k, 'id', id, 'task', task, 'queue', queue, 'state', state, 'payload', payload,
      'priority', priority, 'run_at', run_at, 'attempt', '0', 'max_attempts', max_attempts, 'created_at', NOW, ef, ev, 'last_event', string.sub(ef, 2))
    if key ~= '-' then
      key = string.sub(key, 2)
      redis.call('HSET', k, 'key', key)
      redis.call('HSET', P .. 'keys', key_field(task, key), id)
    end
    if owner ~= '-' then redis.call('HSET', k, 'owner', string.sub(owner, 2)) end
    local index
    if state == 'queued' then index = 'queued:' .. queue .. ':' .. priority else index = 'due:' .. queue end
    local members = indexed[index]
    if not members then
      members = {}
      indexed[index] = members
      if state == 'queued' then redis.call('ZADD', P .. 'prios:' .. queue, priority, priority) end
    end
    members[#members + 1] = run_at
    members[#members + 1] = id
    queues[queue] = true
    lex[#lex + 1] = '0'
    lex[#lex + 1] = id
    count(queue, state, 1)
  end
end
for queue in pairs(queues) do redis.call('SADD', P .. 'queues', queue) end
zadd_many(P .. 'jobs', lex)
for index, members in pairs(indexed) do zadd_many(P .. index, members) end
flush()

if next(holders) == nil then return n end
local out = {}
for i = 0, n - 1 do
  if holders[i] then out[i + 1] = record(jobkey(holders[i])) else out[i + 1] = 1 end
end
return out
