-- Bulk replay of failed jobs, one chunk per call: looks at up to `chunk` failed jobs (last
-- finished first; of those that finished at one time, the highest id first), within [since,
-- until], and requeues those of the queue and task asked for. A job whose key another unfinished
-- job holds now is skipped, not an error; so of several failed jobs sharing a key, the one that
-- failed last (ties: the highest id) is the one requeued, as on every backend.
-- Each call goes on after a cursor, the (finished_at, id) of the last job the call before it
-- looked at: not after a count of jobs, which other writers between two calls (another replay, a
-- retry, a prune) make wrong, so that failed jobs were never looked at. The cursor's job may have
-- left the set meanwhile (this replay or another requeued it): its place is found from its score
-- and id alone, by a binary search over the jobs that share its score (a rescue or a batch
-- failure leaves thousands), so a call costs O(log n) besides its chunk.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] queue ("" any)  ARGV[6] task ("" any)  ARGV[7] since ("-inf")  ARGV[8] until ("+inf")
-- ARGV[9] cursor score ("" for the first call)  ARGV[10] cursor id  ARGV[11] chunk
-- ARGV[12] errors kept  ARGV[13] events kept (requeue in lib.lua)
-- A call also ends early, after the job that takes it to TRIM_BUDGET event fields listed by the
-- history trims (trim_events in lib.lua): trimming a job over the cap lists its whole hash, about
-- 30 ms of the server for 25,000 events, and a chunk of such jobs held the server for seconds.
-- Returns { requeued, more, cursor score, cursor id }: more = 1 when the call looked at a whole
-- chunk or ended early; the caller then calls again with the cursor given back.
local queue, task, since, until_ = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local cursor_score, cursor_id, chunk = ARGV[9], ARGV[10], tonumber(ARGV[11])
local keep_errors, keep_events = tonumber(ARGV[12]), tonumber(ARGV[13])
local failed = P .. 'done:failed'
local TRIM_BUDGET = 50000

-- a < b as a sorted set orders members: by bytes (Lua's `<` on strings follows the server's locale).
local function bytes_before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The rank (newest first, from 0) of the first job to look at: the first at or before `until`,
-- or the first after the cursor.
local function start_rank()
  if cursor_score == '' then return redis.call('ZCOUNT', failed, '(' .. until_, '+inf') end
  -- Ranks lo .. hi - 1 hold the jobs of the cursor's score, ids descending.
  local lo = redis.call('ZCOUNT', failed, '(' .. cursor_score, '+inf')
  local hi = redis.call('ZCOUNT', failed, cursor_score, '+inf')
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if bytes_before(redis.call('ZREVRANGE', failed, mid, mid)[1], cursor_id) then hi = mid else lo = mid + 1 end
  end
  return lo
end

local start = start_rank()
local entries = redis.call('ZREVRANGE', failed, start, start + chunk - 1, 'WITHSCORES')
local lowest = nil
if since ~= '-inf' then lowest = tonumber(since) end
local requeued, looked, listed = 0, 0, 0
local last_score, last_id = '', ''
for i = 1, #entries, 2 do
  local id, score = entries[i], entries[i + 1]
  if lowest and tonumber(score) < lowest then break end
  if listed >= TRIM_BUDGET then break end
  looked = looked + 1
  last_score, last_id = score, id
  local f = redis.call('HMGET', jobkey(id), 'queue', 'task')
  if (queue == '' or f[1] == queue) and (task == '' or f[2] == task) then
    local status, trimmed = requeue(id, keep_errors, keep_events)
    if status == 'QUEUED' then
      requeued = requeued + 1
      listed = listed + trimmed
    end
  end
end
flush()
local more = 0
if looked == chunk or listed >= TRIM_BUDGET then more = 1 end
return { requeued, more, last_score, last_id }
