-- Tells every process that jobs may be there to claim (no origin: this process hears it too),
-- when something that hid them ended without a write that says so (a claim stopped on the
-- server, rolled back: claims that skipped its locked rows came back short).
-- $1 channel text (the schema's NOTIFY channel)
SELECT pg_notify($1::text, '');
