-- A failed or cancelled job back to queued with a fresh set of attempts; errors are kept.
-- KEYS[1] <prefix>queues   ARGV[1..4] common (lib.lua)   ARGV[5] id
-- Returns 'QUEUED', 'NOT_FOUND', 'NOT_FINISHED' or 'KEY_IN_USE' (another unfinished job holds its key).
local status = requeue(ARGV[5])
flush()
return status
