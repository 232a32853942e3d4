-- The jobs that a claim took, for a worker that never got the claim's reply (its connection died
-- after the script ran): every job still active under a lease of that claim, found by the claim's
-- lease_until (its score in `active`) and the base its lease tokens start with. Changes nothing:
-- the claim's own changes are in the hashes already.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] lease_until   ARGV[6] token base
-- Returns one record (lib.lua record, with the token) per job found.
local base = ARGV[6]
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'active', ARGV[5], ARGV[5])) do
  local k = jobkey(id)
  local token = redis.call('HGET', k, 'token')
  if token and string.sub(token, 1, #base) == base then out[#out + 1] = record(k) end
end
return out
