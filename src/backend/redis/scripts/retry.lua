-- A failed or cancelled job back to queued with a fresh set of attempts; its history is kept,
-- trimmed (requeue in lib.lua).
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] id
-- ARGV[6] errors kept   ARGV[7] events kept
-- Returns 'QUEUED', 'NOT_FOUND', 'NOT_FINISHED' or 'KEY_IN_USE' (another unfinished job holds its key).
local status = requeue(ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
flush()
return status
