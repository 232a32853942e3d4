-- Mark active jobs succeeded, each only if the caller still holds its lease (fencing).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)
-- ARGV[5…] triples: id, token, result (JSON)
-- Returns one integer per ack: 1 OK, 0 LEASE_LOST (nothing written for that job).
-- A repeated ack is OK and writes nothing: a succeeded job keeps the token that completed it, so
-- a worker whose reply was lost can send it again (every other script also checks the state).
-- Two calls per job: HMGET and one HSET that carries the event; the index writes are batched.
local out = {}
local done = {}
local gone = {}
for i = 5, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local k = jobkey(id)
  local f = redis.call('HMGET', k, 'token', 'queue', 'attempt', 'key', 'state')
  if token == '' or f[1] ~= token then
    out[#out + 1] = 0
  elseif f[5] == 'succeeded' then
    out[#out + 1] = 1
  elseif f[5] ~= 'active' then
    out[#out + 1] = 0
  else
    count(f[2], 'active', -1)
    count(f[2], 'succeeded', 1)
    -- lease_until is blanked, not deleted: one call per job instead of two.
    local ef, ev = event_fields(id, 'state', state_json('succeeded', f[3]))
    redis.call('HSET', k, 'state', 'succeeded', 'finished_at', NOW, 'result', ARGV[i + 2], 'lease_until', '', ef, ev, 'last_event', string.sub(ef, 2))
    release_key(id, f[4])
    gone[#gone + 1] = id
    done[#done + 1] = NOW
    done[#done + 1] = id
    out[#out + 1] = 1
  end
end
if #gone > 0 then
  for i = 1, #gone, 1000 do redis.call('ZREM', P .. 'active', unpack(gone, i, math.min(i + 999, #gone))) end
  zadd_many(P .. 'done:succeeded', done)
end
flush('quiet')
return out
