-- Removes one event: a run's progress event that a newer one replaces.
-- :id
DELETE FROM offload_events WHERE id = :id;
