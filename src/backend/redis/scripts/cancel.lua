-- Cancel a job: not yet started (scheduled, queued, retrying) → cancelled at once; active →
-- flagged, its worker aborts it and acknowledges with acknowledge-cancel.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] id
-- Returns 'CANCELLED', 'CANCEL_REQUESTED', 'ALREADY_FINISHED' or 'NOT_FOUND'.
local id = ARGV[5]
local k = jobkey(id)
local f = redis.call('HMGET', k, 'state', 'queue', 'priority', 'attempt', 'key')
local state = f[1]
if not state then return 'NOT_FOUND' end
if state == 'active' then
  redis.call('HSET', k, 'cancel', 1)
  changed = true
  flush('quiet')
  return 'CANCEL_REQUESTED'
end
if state == 'succeeded' or state == 'failed' or state == 'cancelled' then return 'ALREADY_FINISHED' end
unindex(id, state, f[2], f[3])
finish(id, f[2], state, 'cancelled', f[4], f[5])
flush('quiet')
return 'CANCELLED'
