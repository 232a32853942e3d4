-- After a prune: drop the counters of finished jobs that came to zero, so a queue whose jobs
-- are all gone keeps no row (queues named per tenant would otherwise leave one per name ever
-- used). The insert triggers make the row again at the queue's next finished job.
-- No parameters.
DELETE FROM offload_finished_counts WHERE n = 0;
