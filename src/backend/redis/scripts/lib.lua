-- Shared helpers, prepended to every script by scripts.ts (not called on its own).
--
-- Every script follows one calling convention:
--   KEYS[1]  <prefix>queues: the routing key; every key a script touches starts with the same
--            {hash tag}, so in Redis Cluster they all live in that key's slot.
--   KEYS[2]  <prefix>slot-guard: never written; it makes Redis Cluster refuse a call while the
--            slot is being moved between nodes, before the script runs (scripts.ts).
--   ARGV[1]  prefix, e.g. "{offload}:"     ARGV[2]  now (epoch ms, the caller's clock)
--   ARGV[3]  event cap (global feed size)  ARGV[4]  origin (this backend instance, for pub/sub)
--   ARGV[5…] the script's own arguments.
-- Timestamps are stored as the caller sent them (strings), never recomputed in Lua, so no float
-- formatting can change a value.
--
-- Keys under the prefix:
--   job:<id>             hash, one job (fields below; "last_event": the id of its newest event)
--   jobs                 zset (score 0), every job id: the lex index behind listJobs
--   queues               set of queue names with jobs (prune forgets a queue left with none)
--   counts:<q>           hash state → number of jobs (O(1) counts)
--   prios:<q>            zset of the priority levels that may have queued jobs
--   queued:<q>:<prio>    zset score run_at, member id: ZSET order (score, member) is run_at, id
--   due:<q>              zset score run_at: scheduled and retrying jobs
--   active               zset score lease_until: active jobs (rescue scans the head)
--   done:<state>         zset score finished_at, per final state (prune, replay)
--   keys                 hash key_field(task, idempotency key) → id of the unfinished job holding it
--   events               stream, the global feed (see event_fields); capped by event id
--   event-seq            string, last event id
--   oom-guard            never written (refuse_when_full)
--   changed              pub/sub channel: message = origin of the change
local P = ARGV[1]
local NOW = ARGV[2]
local EVENT_CAP = tonumber(ARGV[3])
local ORIGIN = ARGV[4]

local function jobkey(id) return P .. 'job:' .. id end

-- A full server (maxmemory under noeviction) refuses a script at its first command that may grow
-- memory only if the script has written nothing yet; a script whose first write is a ZPOPMIN or
-- a ZREM runs whole. So under OOM claims went on and rescues charged attempts while every
-- heartbeat and completion (HSET first) was refused: jobs whose handlers succeeded were run
-- again until they failed for good. A script that starts a run or charges one calls this right
-- before its first write: SETRANGE of an absent key with an empty value is refused like any write
-- that may grow memory, and otherwise changes nothing (no key, nothing replicated on Redis 7).
-- Not at the top of the script: Redis 6.2 wraps a script's effects in MULTI/EXEC from its first
-- write command on, even one that changed nothing, and an idle claim would send an empty
-- MULTI/EXEC to the AOF and every replica.
local guarded = false
local function refuse_when_full()
  if guarded then return end
  guarded = true
  redis.call('SETRANGE', P .. 'oom-guard', 0, '')
end

-- Events are numbered here: INCR for the first, then locally; flush writes the counter back
-- when a script added more than one. Each event is written twice, without a call of its own
-- where possible (redis.call, not the command, is most of a script's cost per job):
-- - into its job's hash as the field "~<event id>" = "<type>\t<at>\t<json>", carried by the
--   same HSET as the transition (event_fields), so a job's events go with its hash;
-- - into the global stream, all of one script's events in one XADD entry (flush): entry id
--   "<last event id>-0", one field "e" = lines "<event id>\t<job id>\t<type>\t<at>\t<json>"
--   joined by "\n" (JSON text never holds a raw newline or tab). One field of the same name in
--   every entry lets the stream share it between entries; a field per event cost a third of a
--   claim's server time.
local event_seq = nil
local event_first = nil
local last_seq = nil -- event_seq as text
local feed = {} -- the lines of this script's events, for the one XADD in flush
local changed = false

-- The field/value pair of a new event for its job's hash; the global copy waits for flush. Every
-- HSET that carries one also sets "last_event" to its id (string.sub(ef, 2)): peek-jobs.lua reads
-- it, so the app's many waiters learn whether a job has new events without listing its fields.
local function event_fields(id, etype, json)
  if not event_seq then
    event_seq = redis.call('INCR', P .. 'event-seq')
    event_first = event_seq
  else
    event_seq = event_seq + 1
  end
  local seq = string.format('%d', event_seq) -- not `..` on the number: see claim.lua
  local body = etype .. '\t' .. NOW .. '\t' .. json
  feed[#feed + 1] = seq .. '\t' .. id .. '\t' .. body
  last_seq = seq
  changed = true
  return '~' .. seq, body
end

local function state_json(state, attempt)
  return '{"state":"' .. state .. '","attempt":' .. attempt .. '}'
end

-- A job's record: its fields without its events, as a flat name/value array (the shape of
-- HGETALL, absent fields left out). A job's hash also holds every event of the job, and a job
-- that logs a lot has tens of thousands: HGETALL read them all each time anyone looked at the
-- job (a result waiter looks at every change), which made such a job quadratic to run.
-- The field list is built per call, not with lib.lua: the hot scripts never need it.
local function record(k)
  local names = { 'id', 'task', 'queue', 'state', 'payload', 'priority', 'run_at', 'attempt',
    'max_attempts', 'key', 'owner', 'worker', 'token', 'lease_until', 'cancel', 'progress',
    'progress_message', 'result', 'errors', 'created_at', 'started_at', 'finished_at' }
  local values = redis.call('HMGET', k, unpack(names))
  local out = {}
  for i = 1, #names do
    if values[i] then
      out[#out + 1] = names[i]
      out[#out + 1] = values[i]
    end
  end
  return out
end

-- Counter deltas per queue and state, summed and written once at the end.
local count_deltas = {}
local function count(queue, state, delta)
  local q = count_deltas[queue]
  if not q then q = {}; count_deltas[queue] = q end
  q[state] = (q[state] or 0) + delta
end

-- Moves a job to state `to`: counters, and one HSET of state, its event (which has the time) and any
-- further field/value pairs given in `extra` (one call instead of several).
local function set_state(id, queue, from, to, attempt, extra)
  if from then count(queue, from, -1) end
  count(queue, to, 1)
  local ef, ev = event_fields(id, 'state', state_json(to, attempt))
  if extra then
    redis.call('HSET', jobkey(id), 'state', to, ef, ev, 'last_event', string.sub(ef, 2), unpack(extra))
  else
    redis.call('HSET', jobkey(id), 'state', to, ef, ev, 'last_event', string.sub(ef, 2))
  end
end

local function queue_job(id, queue, priority, run_at)
  redis.call('ZADD', P .. 'queued:' .. queue .. ':' .. priority, run_at, id)
  redis.call('ZADD', P .. 'prios:' .. queue, priority, priority)
end

-- Removes a job from the index of the state it is in now (before a transition).
local function unindex(id, state, queue, priority)
  if state == 'queued' then
    redis.call('ZREM', P .. 'queued:' .. queue .. ':' .. priority, id)
  elseif state == 'scheduled' or state == 'retrying' then
    redis.call('ZREM', P .. 'due:' .. queue, id)
  elseif state == 'active' then
    redis.call('ZREM', P .. 'active', id)
  else
    redis.call('ZREM', P .. 'done:' .. state, id)
  end
end

-- The field of the keys hash for a task's idempotency key: keys are per task. The task's length
-- in bytes first, so no task name and key can read as another pair.
local function key_field(task, key)
  return string.format('%d', #task) .. ':' .. task .. key
end

-- The unfinished job of `task` that holds its idempotency `key`, or false. What the keys hash names
-- is checked, not trusted: a job whose hash is gone (deleted by hand) holds nothing, nor does one
-- that has finished (a process on code from before keys were per task frees only the bare key
-- when it ends a job, leaving the job's field behind for as long as the job is kept), nor one of
-- another task or key. A job enqueued before keys were per task holds its key under the bare key:
-- found there (a bare key may read as another pair's field, hence the task and key check).
local function key_holder(task, key)
  for _, field in ipairs({ key_field(task, key), key }) do
    local id = redis.call('HGET', P .. 'keys', field)
    if id then
      local f = redis.call('HMGET', jobkey(id), 'state', 'task', 'key')
      if f[2] == task and f[3] == key and (f[1] == 'scheduled' or f[1] == 'queued' or f[1] == 'active' or f[1] == 'retrying') then
        return id
      end
    end
  end
  return false
end

-- Frees the idempotency key, if this job is the one holding it. A job enqueued before keys were
-- per task holds its key under the bare key: freed too, or its field would stay for good.
local function release_key(id, key)
  if key and key ~= '' then
    local field = key_field(redis.call('HGET', jobkey(id), 'task') or '', key)
    if redis.call('HGET', P .. 'keys', field) == id then
      redis.call('HDEL', P .. 'keys', field)
    elseif redis.call('HGET', P .. 'keys', key) == id then
      redis.call('HDEL', P .. 'keys', key)
    end
  end
end

-- A job enters a final state: finished_at, the done index, its key freed. `extra` as in set_state.
-- `keep_token`: the lease that recorded this outcome keeps its token on the job, so a repeat of
-- the same acknowledgement can be recognised (fail.lua); otherwise the token dies here.
local function finish(id, queue, from, to, attempt, key, extra, keep_token)
  local fields = extra or {}
  fields[#fields + 1] = 'finished_at'
  fields[#fields + 1] = NOW
  set_state(id, queue, from, to, attempt, fields)
  if keep_token then
    redis.call('HDEL', jobkey(id), 'lease_until')
  else
    redis.call('HDEL', jobkey(id), 'token', 'lease_until')
  end
  redis.call('ZADD', P .. 'done:' .. to, NOW, id)
  release_key(id, key)
end

-- ZADD of many score/member pairs, in chunks that fit Lua's stack.
local function zadd_many(key, pairs_list)
  for i = 1, #pairs_list, 1000 do
    redis.call('ZADD', key, unpack(pairs_list, i, math.min(i + 999, #pairs_list)))
  end
end

local function append_error(id, errors, json)
  if not errors or errors == '' or errors == '[]' then
    redis.call('HSET', jobkey(id), 'errors', '[' .. json .. ']')
  else
    redis.call('HSET', jobkey(id), 'errors', string.sub(errors, 1, -2) .. ',' .. json .. ']')
  end
end

-- Writes the summed counters, the global copy of this script's events and the event counter,
-- and announces the change (`announce`: false for none, 'quiet' for a change that brings
-- nothing to claim: a claim, a completion, progress, a log line, a cancel). The feed is trimmed by event id (MINID), exactly, whenever the ids
-- cross a multiple of 256: entries hold many events, so trimming by entry count would not do.
local function flush(announce)
  for queue, states in pairs(count_deltas) do
    for state, delta in pairs(states) do
      if delta ~= 0 then redis.call('HINCRBY', P .. 'counts:' .. queue, state, delta) end
    end
  end
  if event_seq then
    local stream = P .. 'events'
    redis.call('XADD', stream, last_seq .. '-0', 'e', table.concat(feed, '\n'))
    if event_seq > EVENT_CAP and math.floor((event_first - 1) / 256) ~= math.floor(event_seq / 256) then
      redis.call('XTRIM', stream, 'MINID', event_seq - EVENT_CAP + 1)
    end
    if event_seq ~= event_first then redis.call('SET', P .. 'event-seq', last_seq) end
  end
  if changed and announce ~= false then
    -- "<origin> quiet": a change that brings nothing to claim (change-feed.ts).
    redis.call('PUBLISH', P .. 'changed', announce == 'quiet' and ORIGIN .. ' quiet' or ORIGIN)
  end
end

-- Where each error of a job's list (append_error's JSON array of objects) starts: the text is
-- walked from brace to brace, skipping strings. Not cjson: it refuses the escaped lone surrogate
-- that JSON.stringify writes for one in an error message, and would fail the requeue.
local function error_starts(errors)
  local starts, depth, pos = {}, 0, 2
  while true do
    local at = string.find(errors, '[{}"]', pos)
    if not at then return starts end
    local c = string.byte(errors, at)
    if c == 34 then -- '"': to the quote that ends the string, past escapes
      pos = at + 1
      repeat
        local e = string.find(errors, '["\\]', pos)
        if not e then return starts end
        local escaped = string.byte(errors, e) == 92
        pos = escaped and e + 2 or e + 1
      until not escaped
    else
      if c == 123 then
        if depth == 0 then starts[#starts + 1] = at end
        depth = depth + 1
      else
        depth = depth - 1
      end
      pos = at + 1
    end
  end
end

-- A requeued job keeps the errors of its newest `keep` attempts (HistoryKept, backend.ts). A list
-- with no more braces than that has no more errors, so most jobs cost one count of its braces.
-- Returns whether it cut the list: only then are the job's events trimmed too (requeue).
local function trim_errors(k, errors, keep)
  if not errors or select(2, string.gsub(errors, '{', '')) <= keep then return false end
  local starts = error_starts(errors)
  if #starts <= keep then return false end
  redis.call('HSET', k, 'errors', keep == 0 and '[]' or '[' .. string.sub(errors, starts[#starts - keep + 1]))
  return true
end

-- A requeued job keeps its newest `keep` events (the fields "~<event id>", see event_fields)
-- before the requeue adds its own. A hash with no more fields than that has no more events, so
-- most jobs cost one HLEN. Over the cap, the oldest go down to nine tenths of it: a job replayed
-- in a loop at the cap is listed once per tenth of the cap, not at every replay.
-- Returns how many fields it listed (0: none), the measure of its cost that replay.lua bounds.
local function trim_events(k, keep)
  if redis.call('HLEN', k) <= keep then return 0 end
  local seqs = {}
  local fields_listed = redis.call('HKEYS', k)
  for _, field in ipairs(fields_listed) do
    if string.byte(field, 1) == 126 then seqs[#seqs + 1] = tonumber(string.sub(field, 2)) end -- '~'
  end
  if #seqs <= keep then return #fields_listed end
  table.sort(seqs)
  local fields = {}
  for i = 1, #seqs - (keep - math.floor(keep / 10)) do
    fields[#fields + 1] = '~' .. string.format('%d', seqs[i])
    if #fields == 1000 then redis.call('HDEL', k, unpack(fields)); fields = {} end
  end
  if #fields > 0 then redis.call('HDEL', k, unpack(fields)) end
  return #fields_listed
end

-- A failed or cancelled job back to queued with a fresh set of attempts, its history trimmed to
-- the newest `keep_errors` errors and `keep_events` events besides the requeue's own.
-- Returns 'QUEUED', 'NOT_FOUND', 'NOT_FINISHED' or 'KEY_IN_USE', and, for 'QUEUED', how many
-- hash fields the event trim listed (trim_events).
local function requeue(id, keep_errors, keep_events)
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'queue', 'priority', 'key', 'task', 'errors')
  if not f[1] then return 'NOT_FOUND' end
  if f[1] ~= 'failed' and f[1] ~= 'cancelled' then return 'NOT_FINISHED' end
  if f[4] then
    if key_holder(f[5] or '', f[4]) then return 'KEY_IN_USE' end -- never this job: it is finished
    redis.call('HSET', P .. 'keys', key_field(f[5] or '', f[4]), id)
  end
  -- Events only once the errors were over their cap: every requeue follows a failure, which
  -- adds an error, so a job replayed in a loop gets there, and a replay of many jobs does not
  -- look at each one's events (on PostgreSQL that read them all).
  local listed = 0
  if trim_errors(k, f[6], keep_errors) then listed = trim_events(k, keep_events) end
  redis.call('ZREM', P .. 'done:' .. f[1], id)
  redis.call('HSET', k, 'attempt', 0, 'run_at', NOW, 'cancel', 0)
  redis.call('HDEL', k, 'finished_at', 'worker', 'token', 'lease_until')
  queue_job(id, f[2], f[3], NOW)
  set_state(id, f[2], f[1], 'queued', 0)
  return 'QUEUED', listed
end
