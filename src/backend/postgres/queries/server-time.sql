-- The server's clock now (clock_timestamp, not the transaction's start), in epoch ms.
-- Returns ms.
SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms;
