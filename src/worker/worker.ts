// The worker: claims at most as many jobs as it has free slots, runs each through the executor,
// renews leases by heartbeat, acknowledges outcomes, and shuts down without losing a job.
//
// Invariants:
// - claimed jobs ≤ free slots (no hidden prefetch: a job another worker could run now is never
//   parked here);
// - an outcome is recorded only with the lease token it was claimed with (fencing);
// - after stop() resolves, no job this worker claimed is left `active`: each finished, or was
//   handed back to `queued`.
import { EventEmitter } from "node:events";
import type { Backend, Lease, Retention } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";
import { type Duration, toMs } from "../core/duration.ts";
import { toError } from "../core/errors.ts";
import { randomToken } from "../core/ids.ts";
import type { ClaimedJob } from "../core/job.ts";
import { Wakeup } from "../core/wakeup.ts";
import { makeJobContext } from "./job-context.ts";
import { CancelRequested, LeaseLost, ShuttingDown } from "./abort-reasons.ts";
import { CompleteBatcher } from "./complete-batcher.ts";
import { execute } from "./executor.ts";
import { JobControl } from "./job-control.ts";
import { recordOutcome, type WorkerEvent } from "./record-outcome.ts";
export type { WorkerEvent };
import { Maintenance } from "./maintenance.ts";
import type { TaskRegistry } from "./task-registry.ts";
import { type WorkerSettings, workerSettings } from "./settings.ts";
import { hostname } from "node:os";

/** Claims a worker keeps in flight at once, where claims overlap (see #claimLoop). */
const CLAIMS_IN_FLIGHT = 4;

export interface WorkerOptions {
  /** Queues to take jobs from. Default: every queue a registered task uses. */
  readonly queues?: readonly string[];
  /** Jobs run at once. Default 10. */
  readonly concurrency?: number;
  /** How long a claim is valid without a heartbeat. Default "15s". */
  readonly lease?: Duration;
  /** How often leases are renewed (and cancel requests noticed). Default "1s". */
  readonly heartbeat?: Duration;
  /** Safety-net poll when no change signal arrives. Default "1s". */
  readonly poll?: Duration;
  /** On stop, how long active jobs may run on before they are handed back. Default "10s". */
  readonly shutdownGrace?: Duration;
  /** A name for this worker, shown on the jobs it runs. Default host:pid:random. */
  readonly id?: string;
}

interface Running {
  readonly claimed: ClaimedJob;
  readonly control: JobControl;
  /** Settles when the job's outcome is written (or it was handed back). Set once, at launch. */
  done: Promise<void>;
  /** Log and progress writes not yet acknowledged; awaited before the outcome is recorded. */
  readonly writes: Set<Promise<unknown>>;
}

export interface WorkerDeps {
  readonly backend: () => Promise<Backend>;
  readonly registry: TaskRegistry;
  readonly clock: Clock;
  readonly maxResultBytes: number;
  readonly retention: Retention;
}

export class Worker extends EventEmitter<{ job: [WorkerEvent]; error: [Error] }> {
  readonly id: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly #deps: WorkerDeps;
  readonly #settings: WorkerSettings;
  // Runs are keyed by lease token, not job id: after a lost lease the same job can be claimed
  // again (by this worker too) while the stale run is still winding down.
  /** Runs whose handler is running: each holds a slot. */
  readonly #running = new Map<string, Running>();
  /** Runs whose handler is done and whose outcome is being written: no slot, but a lease to keep. */
  readonly #acking = new Map<string, Running>();
  /** The newest run of each job: the one a heartbeat's answer about that job id is about. */
  readonly #current = new Map<string, Running>();
  readonly #wakeup = new Wakeup();
  /** The backend signalled a change since the claim loop last looked: new jobs may be there. */
  #changed = false;
  readonly #stopping = new AbortController();
  /** Aborted only once every job is finished or handed back: leases stay renewed during the grace period. */
  readonly #finished = new AbortController();
  #loop: Promise<void> | undefined;
  #backend: Backend | undefined;
  #batcher: CompleteBatcher | undefined;
  #maintenance: Maintenance | undefined;
  #heartbeat: Promise<void> | undefined;
  #unwatch: (() => void) | undefined;

  constructor(deps: WorkerDeps, options: WorkerOptions = {}) {
    super();
    this.#deps = deps;
    this.#settings = workerSettings(options);
    this.id = options.id ?? `${hostname()}:${process.pid}:${randomToken().slice(0, 6)}`;
    this.queues = options.queues?.length ? [...options.queues] : deps.registry.queues().length ? deps.registry.queues() : ["default"];
    this.concurrency = this.#settings.concurrency;
  }

  /** Ids of the jobs running now. */
  get active(): string[] {
    return [...this.#running.values()].map((r) => r.claimed.job.id);
  }

  get stopping(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** Starts claiming. Resolves once the backend is open and the loop is running. */
  async start(): Promise<void> {
    if (this.#loop) return;
    const backend = await this.#deps.backend();
    this.#backend = backend;
    this.#batcher = new CompleteBatcher(backend, this.#deps.clock);
    this.#unwatch = backend.watch(() => {
      this.#changed = true;
      this.#wakeup.notify();
    });
    this.#maintenance = new Maintenance(backend, this.#deps.clock, this.#deps.retention, (e) => this.#report(e));
    this.#maintenance.start(this.#stopping.signal);
    this.#heartbeat = this.#heartbeatLoop(backend);
    this.#loop = this.#claimLoop(backend);
  }

  /**
   * Stops claiming, lets active jobs run for the grace period, then aborts the rest and hands
   * them back to `queued`. Resolves when nothing this worker claimed is left active.
   */
  async stop(options: { grace?: Duration } = {}): Promise<void> {
    const graceMs = options.grace === undefined ? this.#settings.shutdownGraceMs : toMs(options.grace, "grace");
    if (!this.#stopping.signal.aborted) this.#stopping.abort();
    this.#wakeup.notify();
    await this.#loop;
    const allDone = Promise.all([...this.#running.values(), ...this.#acking.values()].map((r) => r.done));
    if (this.#running.size > 0) {
      const timer = new AbortController();
      await Promise.race([allDone, this.#deps.clock.sleep(graceMs, timer.signal).catch(() => {})]);
      timer.abort();
    }
    await this.#handBack();
    await allDone;
    await this.#batcher?.drain();
    this.#finished.abort();
    await this.#heartbeat;
    await this.#maintenance?.stop();
    this.#unwatch?.();
  }

  async #handBack(): Promise<void> {
    const backend = this.#backend;
    const left = [...this.#running.values()];
    if (!backend || left.length === 0) return;
    for (const r of left) r.control.abort(new ShuttingDown());
    const leases: Lease[] = left.map((r) => ({ id: r.claimed.job.id, token: r.claimed.token }));
    const statuses = await this.#withRetry(() => backend.release(leases, this.#deps.clock.now()));
    left.forEach((r, i) => {
      if (statuses?.[i] === "OK") this.emit("job", { type: "released", job: r.claimed.job });
    });
  }

  /**
   * Claims jobs into free slots until stopped. Where claims overlap (a server backend), the free
   * slots are claimed in several smaller batches at once, so the server works on one batch while
   * this process runs another; a slot counts as taken from the moment a claim asks for it.
   */
  async #claimLoop(backend: Backend): Promise<void> {
    const stop = this.#stopping.signal;
    const overlapping = backend.capabilities.overlappingClaims === true;
    const batch = overlapping ? Math.ceil(this.concurrency / CLAIMS_IN_FLIGHT) : this.concurrency;
    const maxInFlight = overlapping ? CLAIMS_IN_FLIGHT : 1;
    const inFlight = new Set<Promise<void>>();
    let reserved = 0; // slots asked for by claims in flight
    let exhausted = false; // a claim came back short: ask again only after a change signal or a poll
    let probing = true; // after idling, one claim first: only a full one shows that more may wait
    // When to look again if nothing signals: the poll, or the next scheduled job if sooner. Asked
    // of the backend once per idle spell, not again on every local wake-up (a job finishing).
    let idleUntil: number | undefined;
    let idleUntilKnowsDue = false; // computed with free slots, so the next due job is in it
    let failures = 0; // in a row, for the back-off
    let backOff = false; // a claim failed: wait before the next
    const claim = (limit: number): void => {
      idleUntil = undefined;
      reserved += limit;
      const request = backend.claim({ queues: this.queues, limit, worker: this.id, leaseMs: this.#settings.leaseMs, now: this.#deps.clock.now() });
      const settled = request.then(
        (claimed) => {
          failures = 0;
          reserved -= limit;
          // Launched even when stop() began meanwhile: stop() waits for them or hands them back.
          for (const c of claimed) this.#launch(backend, c);
          if (claimed.length < limit) exhausted = true;
          else probing = false;
        },
        (error: unknown) => {
          reserved -= limit;
          failures++;
          backOff = true;
          this.#report(error);
        },
      ).finally(() => {
        inFlight.delete(settled);
        this.#wakeup.notify();
      });
      inFlight.add(settled);
    };
    while (!stop.aborted) {
      // Outcomes being written do not hold slots, but too many of them (a slow backend) stop claims.
      const free = this.#acking.size >= 2 * this.concurrency ? 0 : this.concurrency - this.#running.size - reserved;
      if (free > 0 && !exhausted && !backOff && inFlight.size < (probing ? 1 : maxInFlight)) {
        claim(Math.min(free, batch));
        continue;
      }
      if (inFlight.size > 0) {
        // A claim settling, or a job finishing, is what changes the picture.
        await this.#wakeup.wait(this.#settings.pollMs, this.#deps.clock, stop);
      } else if (backOff) {
        // The backend is unreachable or failing: back off (50 ms doubling, at most one poll
        // interval), but wake early on a change signal, so a short blip costs milliseconds.
        await this.#wakeup.wait(Math.min(this.#settings.pollMs, 50 * 2 ** Math.min(failures, 10)), this.#deps.clock, stop);
        backOff = false;
      } else {
        if (this.#changed) {
          // Something changed while claims were out (they may have come back short before it).
          this.#changed = false;
          exhausted = false;
          probing = true;
          continue;
        }
        if (idleUntil === undefined || (free > 0 && !idleUntilKnowsDue)) {
          try {
            idleUntil = this.#deps.clock.now() + (await this.#idleWait(backend, free > 0));
            idleUntilKnowsDue = free > 0;
          } catch (error) {
            this.#report(error);
            failures++;
            backOff = true;
            continue;
          }
        }
        // Woken by a job finishing or a claim settling, the queue is no fuller than it was: only a
        // change signal or the time (the poll, a scheduled job) is a reason to ask again. A wait
        // that returns at once on such a stale wake-up costs one loop, never a spin.
        const notified = await this.#wakeup.wait(Math.max(0, idleUntil - this.#deps.clock.now()), this.#deps.clock, stop);
        if (!notified || this.#changed) {
          this.#changed = false;
          exhausted = false;
          probing = true;
          idleUntil = undefined;
        }
        // Jobs finish in bursts (their acks are batched per event-loop turn): let the whole burst
        // free its slots before claiming, so one claim fills them all instead of one claim each.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    await Promise.all(inFlight);
  }

  /** How long to sleep when idle: until the next scheduled job is due, at most one poll interval. */
  async #idleWait(backend: Backend, hasFreeSlots: boolean): Promise<number> {
    if (!hasFreeSlots) return this.#settings.pollMs;
    const next = await backend.nextDueAt(this.queues);
    if (next === undefined) return this.#settings.pollMs;
    return Math.max(0, Math.min(this.#settings.pollMs, next - this.#deps.clock.now()));
  }

  #launch(backend: Backend, claimed: ClaimedJob): void {
    const control = new JobControl();
    const writes = new Set<Promise<unknown>>();
    const running: Running = { claimed, control, writes, done: Promise.resolve() };
    const { id } = claimed.job;
    // Claimed again while an earlier run of it is still here: that run's lease was rescued, so it
    // is lost; it stops now rather than at the next heartbeat.
    this.#current.get(id)?.control.abort(new LeaseLost());
    this.#current.set(id, running);
    this.#running.set(claimed.token, running);
    this.emit("job", { type: "started", job: claimed.job });
    running.done = this.#run(backend, running).finally(() => {
      this.#running.delete(claimed.token);
      this.#acking.delete(claimed.token);
      if (this.#current.get(id) === running) this.#current.delete(id);
      this.#wakeup.notify();
    });
  }

  async #run(backend: Backend, running: Running): Promise<void> {
    const started = this.#deps.clock.now();
    const execution = await execute(
      { registry: this.#deps.registry, clock: this.#deps.clock, maxResultBytes: this.#deps.maxResultBytes },
      running.claimed,
      running.control,
      (signal) => makeJobContext(backend, running.claimed, signal, { clock: this.#deps.clock, writes: running.writes, report: (e) => this.#report(e) }),
    );
    await Promise.allSettled([...running.writes]);
    // The handler is done: free its slot now, so the next claim overlaps this acknowledgement
    // (for a networked backend, a round trip saved per batch). The lease stays renewed until the
    // outcome is written.
    const token = running.claimed.token;
    if (this.#running.delete(token)) {
      this.#acking.set(token, running);
      this.#wakeup.notify();
    }
    try {
      const event = await recordOutcome(
        { backend, complete: (ack) => this.#batcher!.complete(ack), worker: this.id, now: this.#deps.clock.now(), startedAt: started },
        running.claimed,
        execution,
      );
      if (event) this.emit("job", event);
    } catch (error) {
      // The lease will expire and the job run again: at-least-once holds, nothing is lost.
      this.#report(error);
    }
  }

  async #heartbeatLoop(backend: Backend): Promise<void> {
    const finished = this.#finished.signal;
    while (!finished.aborted) {
      await this.#deps.clock.sleep(this.#settings.heartbeatMs, finished).catch(() => {});
      const running = [...this.#running.values(), ...this.#acking.values()].filter((r) => !r.control.aborted);
      if (running.length === 0) continue;
      try {
        const leases = running.map((r) => ({ id: r.claimed.job.id, token: r.claimed.token }));
        const result = await backend.heartbeat({ worker: this.id, leases, leaseMs: this.#settings.leaseMs, now: this.#deps.clock.now() });
        // Only the newest run of a job is heartbeated (a stale one was aborted), so ids are unambiguous.
        for (const id of result.lost) this.#current.get(id)?.control.abort(new LeaseLost());
        for (const id of result.cancelRequested) {
          const run = this.#current.get(id);
          if (run && this.#running.has(run.claimed.token)) run.control.abort(new CancelRequested());
        }
      } catch (error) {
        this.#report(error);
      }
    }
  }

  async #withRetry<T>(work: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        return await work();
      } catch (error) {
        this.#report(error);
        await this.#deps.clock.sleep(100 * 2 ** attempt).catch(() => {});
      }
    }
    return undefined;
  }

  #report(error: unknown): void {
    const err = toError(error);
    if (this.listenerCount("error") > 0) this.emit("error", err);
    else process.emitWarning(`offload worker ${this.id}: ${err.message}`);
  }
}

