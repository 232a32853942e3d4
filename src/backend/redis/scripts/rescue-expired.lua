-- Active jobs whose lease ran out (worker died or hung): back to queued, or failed when that was
-- their last attempt, or cancelled when a cancel was requested. Their token is deleted, so a late
-- acknowledgement from the lost worker is refused. Up to `chunk` ids of the lease set per call.
-- An id there with no job hash (deleted by hand) leaves the lease set and the jobs index; one
-- whose job is not active (the set drifted from the job) leaves the lease set, its job untouched.
-- Neither is rescued, but both count towards the chunk: a sweep that stopped at the first call
-- with fewer rescues than ids looked at left the rest of the expired leases to the next sweep.
-- (A deleted job's per-queue counter stays off by one: its queue went with its hash.)
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] chunk
-- Returns { ids looked at, id, new state, id, new state, … } (fewer than chunk looked at: nothing left).
local out = { 0 }
local ids = redis.call('ZRANGEBYSCORE', P .. 'active', '-inf', '(' .. NOW, 'LIMIT', 0, tonumber(ARGV[5]))
-- On a full server those leases ran out because heartbeats were refused: no attempt is charged.
if #ids > 0 then refuse_when_full() end
for _, id in ipairs(ids) do
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'state', 'queue', 'attempt', 'max_attempts', 'cancel', 'worker', 'key', 'errors', 'priority', 'run_at')
  redis.call('ZREM', P .. 'active', id)
  if not f[1] then
    redis.call('ZREM', P .. 'jobs', id)
  elseif f[1] == 'active' then
    local worker = f[6] or '?'
    append_error(id, f[8], cjson.encode({ attempt = tonumber(f[3]), name = 'LeaseExpired',
      message = 'lease expired: worker ' .. worker .. ' stopped renewing it', worker = f[6] or cjson.null, at = tonumber(NOW) }))
    local state
    if f[5] == '1' then
      state = 'cancelled'
      finish(id, f[2], 'active', state, f[3], f[7])
    elseif tonumber(f[3]) < tonumber(f[4]) then
      state = 'queued'
      redis.call('HDEL', k, 'token', 'lease_until')
      queue_job(id, f[2], f[9], f[10])
      set_state(id, f[2], 'active', state, f[3])
    else
      state = 'failed'
      finish(id, f[2], 'active', state, f[3], f[7])
    end
    out[#out + 1] = id
    out[#out + 1] = state
  end
end
out[1] = #ids
flush()
return out
