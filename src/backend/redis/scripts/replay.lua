-- Bulk replay of failed jobs, one chunk per call: looks at up to `chunk` failed jobs (last
-- finished first) from `skip` on, within [since, until], and requeues those of the queue and
-- task asked for. A job whose key another unfinished job holds now is skipped, not an error; so
-- of several failed jobs sharing a key, the one that failed last (ties: the highest id) is the one
-- requeued, as on every backend.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] queue ("" any)  ARGV[6] task ("" any)  ARGV[7] since ("-inf")  ARGV[8] until ("+inf")
-- ARGV[9] skip  ARGV[10] chunk  ARGV[11] errors kept  ARGV[12] events kept (requeue in lib.lua)
-- Returns { requeued, looked_at_and_left }: the caller adds the second to `skip`, and stops
-- when requeued + left < chunk.
local queue, task = ARGV[5], ARGV[6]
local keep_errors, keep_events = tonumber(ARGV[11]), tonumber(ARGV[12])
local ids = redis.call('ZREVRANGEBYSCORE', P .. 'done:failed', ARGV[8], ARGV[7], 'LIMIT', tonumber(ARGV[9]), tonumber(ARGV[10]))
local requeued, left = 0, 0
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', jobkey(id), 'queue', 'task')
  if (queue == '' or f[1] == queue) and (task == '' or f[2] == task) and requeue(id, keep_errors, keep_events) == 'QUEUED' then
    requeued = requeued + 1
  else
    left = left + 1
  end
end
flush()
return { requeued, left }
