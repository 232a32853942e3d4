-- Which of these ids have a job: asked after an enqueue whose reply was lost was refused on a
-- resend for an existing id (lost-replies.ts).
-- $1 ids text[]
-- Returns the stored ids, in no particular order.
SELECT id FROM offload.jobs WHERE id = ANY ($1::text[]);
