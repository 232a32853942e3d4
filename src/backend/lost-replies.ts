// Calls whose reply never came. When a connection dies, or goes silent past the reply timeout,
// after a call was written, the server may or may not have acted on it. For acknowledgements the
// worker simply sends them again (they are idempotent by lease token: worker/ack-retry.ts). Two
// calls need more, and the server adapters do it here, so their callers never see the doubt:
//
// - enqueue: the caller, a web request say, could neither answer "accepted" nor safely enqueue
//   again: a job lost, or a job twice. The batch is sent again, unchanged, and that is safe
//   because a batch is stored all or nothing, every job keeps the id it was given, and ids are
//   never reused (UUIDv7, made at enqueue). So a resend refused for an existing id has met the
//   jobs of the attempt whose reply was lost; a keyed job which that attempt stored now holds its
//   key, so the resend is answered with it as the holder: it is this call's own job.
// - claim: the jobs it took would sit active, leased to a worker that never heard of them, until
//   the lease ran out, and rescue would charge them an attempt they never ran (with `attempts: 1`,
//   a job failed without running). Each claim's lease tokens start with a base the adapter made
//   for it, so the adapter asks which jobs are active under that base and hands them over.
//
// Only failures that leave the outcome unknown, or that say the server did not run the call (a
// failover, a restart), are tried again; an error the server answered is the caller's.
import { systemClock } from "../core/clock.ts";
import type { EnqueueResult, NewJob } from "./backend.ts";

/**
 * Pauses before each resend of a write whose outcome is unknown: about 9 s in all, which rides
 * out a restart or a failover, and stays well inside a default lease (the worker's acks use it too).
 */
export const RESEND_DELAYS_MS: readonly number[] = [50, 200, 500, 1_000, 2_000, 5_000];

export interface ResendEnqueue {
  /** Writes the batch: one atomic step. */
  send(jobs: readonly NewJob[]): Promise<EnqueueResult[]>;
  /** The call failed without a verdict from the server, or the server did not run it: send again. */
  resendable(error: unknown): boolean;
  /** The server refused the batch because a job with one of its ids exists. */
  duplicateId(error: unknown): boolean;
  /** Which of these ids are stored. */
  stored(ids: readonly string[]): Promise<ReadonlySet<string>>;
  /** Waits before a resend (tests shorten it). */
  pause?(ms: number): Promise<void>;
}

/**
 * `attempt(0)`, then, while it fails with an error that `resendable` accepts, a pause of the
 * schedule and `attempt(1)`, `attempt(2)`… The last failure is thrown.
 */
export async function resending<T>(
  attempt: (resend: number) => Promise<T>,
  resendable: (error: unknown) => boolean,
  pause: (ms: number) => Promise<void> = (ms) => systemClock.sleep(ms),
): Promise<T> {
  for (let resend = 0; ; resend++) {
    try {
      return await attempt(resend);
    } catch (error) {
      const delay = RESEND_DELAYS_MS[resend];
      if (delay === undefined || !resendable(error)) throw error;
      await pause(delay);
    }
  }
}

/** Enqueue: sends the batch, and again as it was while its reply is lost (see the top). */
export function enqueueResending(jobs: readonly NewJob[], now: number, deps: ResendEnqueue): Promise<EnqueueResult[]> {
  return resending(async (resend) => {
    try {
      return ownHolders(jobs, await deps.send(jobs));
    } catch (error) {
      if (resend > 0 && deps.duplicateId(error)) return await landedEarlier(jobs, now, deps, error);
      throw error;
    }
  }, (error) => deps.resendable(error), (ms) => (deps.pause ? deps.pause(ms) : systemClock.sleep(ms)));
}

/** A keyed job answered with itself as the key's holder was stored by an attempt whose reply was lost. */
function ownHolders(jobs: readonly NewJob[], results: EnqueueResult[]): EnqueueResult[] {
  return results.map((result, i) => (!result.created && result.job.id === jobs[i]?.id ? { job: { id: result.job.id, state: result.job.state }, created: true } : result));
}

/**
 * A resend was refused because some of its ids exist: an earlier attempt stored the batch. Its jobs
 * without a key are all there then, and are this call's; a keyed job that is not there was matched
 * to its key's holder by that attempt, and is sent again alone to be matched (or stored, if the
 * holder has finished since). If a job without a key is missing, the ids were there before this
 * call (the outbox relay delivers jobs again after a crash): the refusal stands.
 */
async function landedEarlier(jobs: readonly NewJob[], now: number, deps: ResendEnqueue, refusal: unknown): Promise<EnqueueResult[]> {
  const stored = await deps.stored(jobs.map((j) => j.id));
  if (jobs.some((j) => j.key === undefined && !stored.has(j.id))) throw refusal;
  const matched = jobs.filter((j) => !stored.has(j.id));
  const again = matched.length === 0 ? [] : await enqueueResending(matched, now, deps);
  const byId = new Map(matched.map((j, i) => [j.id, again[i]]));
  return jobs.map((job) => {
    if (stored.has(job.id)) return { job: { id: job.id, state: job.runAt > now ? "scheduled" : "queued" }, created: true };
    const result = byId.get(job.id);
    if (!result) throw new Error(`enqueue: no result for job ${job.id} after a resend`);
    return result;
  });
}
