-- Record a failed attempt: retrying at retry_at while attempts are left, else failed; cancelled
-- instead when a cancel was requested while it ran (the handler failed before it was aborted), so
-- the request is not forgotten by the retry.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5] id  ARGV[6] token  ARGV[7] error (JSON object)  ARGV[8] retry_at ("" for no retry)
-- Returns 'retrying', 'failed' or 'cancelled', or 0 when the lease was lost (LEASE_LOST, nothing written).
-- A repeat is answered as the first was and writes nothing: the job keeps the token of the run
-- that failed (every other lease script requires state 'active'), so a worker whose reply was
-- lost can send the failure again. Once the job moves on (staged, claimed, retried), it is refused.
local id, token, err, retry_at = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local k = jobkey(id)
local f = redis.call('HMGET', k, 'state', 'token', 'queue', 'attempt', 'max_attempts', 'key', 'errors', 'cancel')
if f[2] ~= token then return 0 end
if f[1] == 'retrying' or f[1] == 'failed' or f[1] == 'cancelled' then return f[1] end
if f[1] ~= 'active' then return 0 end
append_error(id, f[7], err)
redis.call('ZREM', P .. 'active', id)
local state
if f[8] == '1' then
  state = 'cancelled'
  finish(id, f[3], 'active', 'cancelled', f[4], f[6], nil, true)
elseif retry_at ~= '' and tonumber(f[4]) < tonumber(f[5]) then
  state = 'retrying'
  redis.call('HSET', k, 'run_at', retry_at)
  redis.call('HDEL', k, 'lease_until', 'finished_at')
  redis.call('ZADD', P .. 'due:' .. f[3], retry_at, id)
  set_state(id, f[3], 'active', 'retrying', f[4])
else
  state = 'failed'
  finish(id, f[3], 'active', 'failed', f[4], f[6], nil, true)
end
flush()
return state
