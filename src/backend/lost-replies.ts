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
  /** See ResendOptions.notSent. */
  notSent?(error: unknown): boolean;
  /** Waits before a resend (tests shorten it). */
  pause?(ms: number): Promise<void>;
}

/**
 * How long resends may go on after the first failure. A resend made while the server is away
 * waits in the client's queue for a new connection, which for a host that vanished can take
 * minutes: the caller (a web request, a worker's stop()) must hear within about the schedule.
 */
export const RESEND_BUDGET_MS = 10_000;

export interface ResendOptions {
  /** Waits before a resend (tests shorten it). */
  readonly pause?: (ms: number) => Promise<void>;
  readonly budgetMs?: number;
  /**
   * The call was given up before it was sent (no connection came in time). First time round that
   * is the answer: nothing was written. For a resend it says nothing of the attempt whose outcome
   * is unknown, so resends go on within the budget: the server may be back by the next one.
   */
  readonly notSent?: (error: unknown) => boolean;
  /** A resend's failure that settles the doubt (it proves the lost attempt did not land): thrown as it is. */
  readonly conclusive?: (error: unknown) => boolean;
}

/**
 * `attempt(0)`, then, while it fails with an error that `resendable` accepts, a pause of the
 * schedule and `attempt(1)`, `attempt(2)`… Resends stop at the budget, a resend still unanswered
 * then included (it may still land, like every call whose reply never came). Once a resend was
 * needed, what is thrown is the latest failure that left the outcome in doubt, whatever the
 * resends met after it: a resend that was never sent, or that the server refused, does not make
 * a call that may have landed one that did not ("the call was not sent", said of an enqueue whose
 * job was stored and then ran, invited a second enqueue of it).
 */
export async function resending<T>(
  attempt: (resend: number) => Promise<T>,
  resendable: (error: unknown) => boolean,
  options: ResendOptions = {},
): Promise<T> {
  const pause = options.pause ?? ((ms: number) => systemClock.sleep(ms));
  let giveUpAt = Number.POSITIVE_INFINITY; // set at the first failure
  let doubt: unknown; // the latest failure that left the outcome unknown
  for (let resend = 0; ; resend++) {
    try {
      return await (resend === 0 ? attempt(0) : withinBudget(attempt(resend), giveUpAt - performance.now()));
    } catch (error) {
      if (error === BUDGET_SPENT) throw doubt;
      if (resend === 0) {
        if (!resendable(error)) throw error;
        giveUpAt = performance.now() + (options.budgetMs ?? RESEND_BUDGET_MS);
        doubt = error;
      } else if (resendable(error)) {
        doubt = error;
      } else if (options.conclusive?.(error) === true) {
        throw error;
      } else if (options.notSent?.(error) !== true) {
        throw doubt;
      }
      const delay = RESEND_DELAYS_MS[resend];
      if (delay === undefined || performance.now() + delay >= giveUpAt) throw doubt;
      await pause(delay);
    }
  }
}

const BUDGET_SPENT = Symbol("resend budget spent");

/** `call`, or BUDGET_SPENT thrown once `ms` have passed without its answer (which is then ignored). */
function withinBudget<T>(call: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      call.catch(() => {}); // its answer comes to nobody
      reject(BUDGET_SPENT);
    }, Math.max(0, ms));
    timer.unref();
    call.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export interface RecoverClaim<T> {
  /** The claim itself, whose lease tokens all start with one base made for it. */
  claim(): Promise<T[]>;
  /** The jobs active under that base and the claim's lease deadline. */
  reclaim(): Promise<T[]>;
  readonly resendable: (error: unknown) => boolean;
  /** See ResendOptions.notSent. */
  readonly notSent?: (error: unknown) => boolean;
  /** The claim's `now`, and the lease deadline it gave its jobs. */
  readonly now: number;
  readonly leaseUntil: number;
}

/**
 * Claim: the claim, and after a lost reply the jobs it took, found by its token base (see the top).
 * If none are found, the claim fails with the lost reply's error rather than answer "no jobs": a
 * claim that never reached the server took nothing, but says nothing of the queue, and a claim
 * loop that read the empty answer as an empty queue would sleep until its poll beside waiting work.
 */
export function claimRecovering<T>(deps: RecoverClaim<T>): Promise<T[]> {
  const started = performance.now();
  return resending(async (resend) => {
    if (resend === 0) return deps.claim();
    // Once the claim's leases have run out its jobs are rescue's: handed over now, they could run
    // here and on another worker at once.
    if (deps.now + (performance.now() - started) >= deps.leaseUntil) throw new NothingRecovered();
    const found = await deps.reclaim();
    if (found.length === 0) throw new NothingRecovered();
    return found;
  }, (error) => !(error instanceof NothingRecovered) && deps.resendable(error), { notSent: deps.notSent });
}

/** Ends a claim's recovery empty-handed: resending() then throws the lost reply's error. */
class NothingRecovered extends Error {}

/** Enqueue: sends the batch, and again as it was while its reply is lost (see the top). */
export function enqueueResending(jobs: readonly NewJob[], now: number, deps: ResendEnqueue): Promise<EnqueueResult[]> {
  return resending(async (resend) => {
    try {
      const results = ownHolders(jobs, await deps.send(jobs));
      return resend === 0 ? results : await ownJobsFound(jobs, now, results, deps);
    } catch (error) {
      if (resend > 0 && deps.duplicateId(error)) return await landedEarlier(jobs, now, deps, error);
      throw error;
    }
  }, (error) => deps.resendable(error), {
    pause: (ms) => (deps.pause ? deps.pause(ms) : systemClock.sleep(ms)),
    notSent: deps.notSent,
    // Out of landedEarlier: the ids were there before this call, so nothing of it was stored.
    conclusive: (error) => deps.duplicateId(error),
  });
}

/**
 * A resend answered a keyed job with another job as its key's holder. If the lost attempt had
 * stored this job, and it finished and gave up its key before the resend came, the job is this
 * call's all the same: stored, and created by it.
 */
async function ownJobsFound(jobs: readonly NewJob[], now: number, results: EnqueueResult[], deps: ResendEnqueue): Promise<EnqueueResult[]> {
  const matched = jobs.filter((job, i) => results[i]?.created === false);
  if (matched.length === 0) return results;
  const stored = await deps.stored(matched.map((j) => j.id));
  return results.map((result, i) => {
    const job = jobs[i];
    return job && stored.has(job.id) ? { job: { id: job.id, state: job.runAt > now ? "scheduled" : "queued" }, created: true } : result;
  });
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
