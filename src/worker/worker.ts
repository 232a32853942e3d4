// The worker: claims at most as many jobs as it has free slots, runs each through the executor,
// renews leases by heartbeat, acknowledges outcomes, and shuts down without losing a job.
//
// Invariants:
// - claimed jobs ≤ free slots (no hidden prefetch: a job another worker could run now is never
//   parked here);
// - an outcome is recorded only with the lease token it was claimed with (fencing);
// - after stop() resolves, no job this worker claimed is left `active`: each finished, or was
//   handed back to `queued` (unless the backend was unreachable: then it is left to its lease).
import { EventEmitter } from "node:events";
import type { Backend, Lease, Retention } from "../backend/backend.ts";
import { forCaller } from "../backend/backend-errors.ts";
import { type Clock, FakeClock } from "../core/clock.ts";
import { type Duration, toMs } from "../core/duration.ts";
import { ClosedError, ConfigError, toError } from "../core/errors.ts";
import { randomToken } from "../core/ids.ts";
import { checkQueueName, describe, isName } from "../core/names.ts";
import type { ClaimedJob } from "../core/job.ts";
import { unlessAborted } from "../core/unless-aborted.ts";
import { Wakeup } from "../core/wakeup.ts";
import { makeJobContext } from "./job-context.ts";
import { CancelRequested, LeaseLost, ShuttingDown } from "./abort-reasons.ts";
import { ClaimLoop } from "./claim-loop.ts";
import { AckRetry } from "./ack-retry.ts";
import { CompleteBatcher } from "./complete-batcher.ts";
import { execute } from "./executor.ts";
import { JobControl } from "./job-control.ts";
import { inState, recordOutcome, type WorkerEvent } from "./record-outcome.ts";
export type { WorkerEvent };
import { Maintenance } from "./maintenance.ts";
import { checkClock } from "./clock-check.ts";
import { blockedLoopWarning } from "./blocked-loop.ts";
import type { TaskRegistry } from "./task-registry.ts";
import { type WorkerSettings, workerSettings } from "./settings.ts";
import { hostname } from "node:os";

/** The longest stop() tries to hand jobs back to a backend that does not answer (see #withRetry). */
const HAND_BACK_WITHIN_MS = 30_000;

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
  /** Called once the worker's shutdown is over: its owner need not keep it any longer. */
  readonly onStopped?: (worker: Worker) => void;
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
  readonly #stopping = new AbortController();
  /** Aborted only once every job is finished or handed back: leases stay renewed during the grace period. */
  readonly #finished = new AbortController();
  #loop: Promise<void> | undefined;
  /**
   * The one start in progress or done: two start() calls that overlap (neither awaited before the
   * other) must not each build a claim loop, whose reservations would not see each other's claims.
   */
  #starting: Promise<void> | undefined;
  #backend: Backend | undefined;
  #batcher: CompleteBatcher | undefined;
  /** Outcome writes that failed are sent again through this; stop() hurries it after the grace. */
  #ackRetry: AckRetry | undefined;
  #stopped: Promise<void> | undefined;
  #maintenance: Maintenance | undefined;
  #heartbeat: Promise<void> | undefined;
  #unwatch: (() => void) | undefined;
  /** Runs launched so far: the heartbeat loop's way to tell that jobs ran while it slept. */
  #launched = 0;
  /** Set once stop() hands jobs back: a claim answered after that runs nothing. */
  #handingBack = false;
  /** Hand-backs of jobs whose claim was answered after that: stop() waits for them. */
  readonly #lateReleases = new Set<Promise<void>>();

  constructor(deps: WorkerDeps, options: WorkerOptions = {}) {
    super();
    this.#deps = deps;
    this.#settings = workerSettings(options);
    if (options.id !== undefined && !isName(options.id)) {
      throw new ConfigError("a worker id must be 1-200 characters, without U+0000 or a lone surrogate");
    }
    this.id = options.id ?? `${hostname()}:${process.pid}:${randomToken().slice(0, 6)}`;
    // Checked as task queues are: a string here was read letter by letter ("reports" → r, e, p…),
    // and a worker of misspelt queues claimed nothing, silently.
    if (options.queues !== undefined && !Array.isArray(options.queues)) {
      throw new ConfigError(`worker queues must be an array of queue names, got ${describe(options.queues)}`);
    }
    // Each queue once (`--queues a,a` is a typo, not a weight): a claim asks per queue name given.
    this.queues = options.queues?.length ? [...new Set(options.queues.map(checkQueueName))] : deps.registry.queues().length ? deps.registry.queues() : ["default"];
    this.concurrency = this.#settings.concurrency;
  }

  /** Ids of the jobs running now. */
  get active(): string[] {
    return [...this.#running.values()].map((r) => r.claimed.job.id);
  }

  get stopping(): boolean {
    return this.#stopping.signal.aborted;
  }

  /**
   * Starts claiming. Resolves once the backend is open and the loop is running. A stopped worker
   * does not start again (ClosedError): its hand-backs and lease renewals are over, so a fresh
   * one is the clear way (`offload.worker()`).
   */
  start(): Promise<void> {
    if (this.#stopping.signal.aborted) return Promise.reject(new ClosedError(`worker ${this.id} was stopped: make a new one to start again`));
    if (!this.#starting) {
      const starting = this.#start();
      this.#starting = starting;
      // A failed open may be tried again by a later start().
      starting.catch(() => {
        if (this.#starting === starting) this.#starting = undefined;
      });
    }
    return this.#starting;
  }

  async #start(): Promise<void> {
    const backend = await this.#deps.backend();
    // stop() came while the backend was opening: starting now would subscribe to changes and run
    // loops that the finished stop() will never end.
    if (this.#stopping.signal.aborted) return;
    this.#backend = backend;
    this.#ackRetry = new AckRetry(this.#deps.clock, this.#settings.leaseMs, (error) => this.#report(error));
    this.#batcher = new CompleteBatcher(backend, this.#deps.clock, this.#ackRetry);
    const claims = new ClaimLoop({
      backend, clock: this.#deps.clock, wakeup: this.#wakeup, queues: this.queues, worker: this.id,
      concurrency: this.concurrency, leaseMs: this.#settings.leaseMs, pollMs: this.#settings.pollMs,
      running: () => this.#running.size,
      acking: () => this.#acking.size,
      launch: (claimed) => this.#launch(backend, claimed),
      report: (error) => this.#report(error),
    });
    this.#unwatch = backend.watch(() => claims.changed(), { newWork: true });
    const ackRetry = this.#ackRetry;
    this.#maintenance = new Maintenance(backend, this.#deps.clock, this.#deps.retention, (e) => this.#report(e), () => ackRetry.failing);
    this.#maintenance.start(this.#stopping.signal);
    this.#heartbeat = this.#heartbeatLoop(backend, ackRetry);
    void checkClock(this.#deps.clock, backend);
    this.#loop = claims.run(this.#stopping.signal);
  }

  /**
   * Stops claiming, lets active jobs run for the grace period, then aborts the rest and hands
   * them back to `queued`. Resolves when nothing this worker claimed is left active.
   */
  async stop(options: { grace?: Duration } = {}): Promise<void> {
    const graceMs = options.grace === undefined ? this.#settings.shutdownGraceMs : toMs(options.grace, "grace");
    // One shutdown, whoever asks: a second stop() (offload.close() after a signal handler's
    // worker.stop()) ran the whole shutdown again, found every run already aborted by the first,
    // and returned, ending the heartbeats, while the first one's hand-back was still on its way.
    await (this.#stopped ??= this.#stop(graceMs).finally(() => this.#deps.onStopped?.(this)));
  }

  async #stop(graceMs: number): Promise<void> {
    if (!this.#stopping.signal.aborted) this.#stopping.abort();
    this.#wakeup.notify();
    // A start() still opening the backend would otherwise set up its loops after this returned.
    await this.#starting?.catch(() => {});
    // Running jobs, and acknowledgements that are being retried, get the grace period. It runs
    // from here, not from the end of the claims in flight: a claim on a connection to a host that
    // vanished can hang for minutes, and the jobs already running must still be stopped and
    // handed back.
    const timer = new AbortController();
    const graceOver = this.#deps.clock.sleep(graceMs, timer.signal).catch(() => {});
    await Promise.race([this.#loop, graceOver]);
    await Promise.race([this.#allDone(), graceOver]);
    timer.abort();
    this.#ackRetry?.hurry();
    await this.#handBack();
    // A claim still out is waited for only now, after the running jobs were handed back; the jobs
    // it brings are handed back as it lands (#launch).
    await this.#loop;
    await Promise.all(this.#lateReleases);
    await this.#allDone();
    await this.#batcher?.drain();
    this.#finished.abort();
    await this.#heartbeat;
    await this.#maintenance?.stop();
    this.#unwatch?.();
  }

  /** Settles once no run is left, runs launched meanwhile included. */
  async #allDone(): Promise<void> {
    while (this.#running.size > 0 || this.#acking.size > 0) {
      await Promise.all([...this.#running.values(), ...this.#acking.values()].map((r) => r.done));
    }
  }

  async #handBack(): Promise<void> {
    this.#handingBack = true;
    const backend = this.#backend;
    // A run already stopped by its timeout or a cancel request has its outcome decided and
    // written within the hard stop, which stop() waits for anyway: handing it back too emitted
    // `released` then `lease-lost`, and lost the timeout from the job's history. A run whose
    // lease was lost has nothing to hand back.
    const left = [...this.#running.values()].filter((r) => !r.control.aborted);
    if (!backend || left.length === 0) return;
    for (const r of left) r.control.abort(new ShuttingDown());
    // Handed back only once each handler has stopped (or its 1 s hard stop has passed): released
    // at the abort, a job was claimed and run by another worker while this handler was still
    // winding down, two runs at once. The leases stay renewed meanwhile.
    await Promise.all(left.map((r) => r.done));
    const leases: Lease[] = left.map((r) => ({ id: r.claimed.job.id, token: r.claimed.token }));
    const statuses = await this.#withRetry(() => backend.release(leases, this.#deps.clock.now()), leases.length);
    left.forEach((r, i) => {
      // A cancel requested while it ran (unseen yet: heartbeats bring it) ends it cancelled.
      if (statuses?.[i] === "QUEUED") this.#emitJob({ type: "released", job: inState(r.claimed.job, "queued") });
      else if (statuses?.[i] === "CANCELLED") this.#emitJob({ type: "cancelled", job: inState(r.claimed.job, "cancelled") });
    });
  }

  #launch(backend: Backend, claimed: ClaimedJob): void {
    if (this.#handingBack) {
      // Claimed by a request answered after stop() handed its jobs back: run nothing more, give
      // the job back at once.
      this.#releaseLate(backend, claimed);
      return;
    }
    this.#launched += 1;
    const control = new JobControl();
    const writes = new Set<Promise<unknown>>();
    const running: Running = { claimed, control, writes, done: Promise.resolve() };
    const { id } = claimed.job;
    // Claimed again while an earlier run of it is still here: that run's lease was rescued, so it
    // is lost; it stops now rather than at the next heartbeat.
    this.#current.get(id)?.control.abort(new LeaseLost());
    this.#current.set(id, running);
    this.#running.set(claimed.token, running);
    this.#emitJob({ type: "started", job: claimed.job });
    running.done = this.#run(backend, running).finally(() => {
      this.#running.delete(claimed.token);
      this.#acking.delete(claimed.token);
      if (this.#current.get(id) === running) this.#current.delete(id);
      this.#wakeup.notify();
    });
  }

  #releaseLate(backend: Backend, claimed: ClaimedJob): void {
    const lease = { id: claimed.job.id, token: claimed.token };
    // No event: the job never started here. Tried as a hand-back is; if every try fails, the job
    // is left to its lease.
    const released = this.#withRetry(() => backend.release([lease], this.#deps.clock.now()), 1).then(() => {
      this.#lateReleases.delete(released);
    });
    this.#lateReleases.add(released);
  }

  async #run(backend: Backend, running: Running): Promise<void> {
    const started = this.#deps.clock.now();
    const execution = await execute(
      { registry: this.#deps.registry, clock: this.#deps.clock, maxResultBytes: this.#deps.maxResultBytes },
      running.claimed,
      running.control,
      (signal) => makeJobContext(backend, running.claimed, signal, { clock: this.#deps.clock, writes: running.writes, report: (e) => this.#report(e), retry: this.#ackRetry }),
    );
    // The handler is done: free its slot now, so the next claim overlaps this acknowledgement
    // (for a networked backend, a round trip saved per batch). The lease stays renewed until the
    // outcome is written. Moved before its last log and progress writes land: a run still in
    // `#running` is handed back by stop(), and a finished job would then run again.
    const token = running.claimed.token;
    if (this.#running.delete(token)) {
      this.#acking.set(token, running);
      this.#wakeup.notify();
    }
    await Promise.allSettled([...running.writes]);
    try {
      const event = await recordOutcome(
        { backend, complete: (ack) => this.#batcher!.complete(ack), retry: this.#ackRetry, worker: this.id, now: this.#deps.clock.now(), startedAt: started },
        running.claimed,
        execution,
      );
      if (event) this.emit("job", event);
    } catch (error) {
      // The lease will expire and the job run again: at-least-once holds, nothing is lost.
      this.#report(error);
    }
  }

  async #heartbeatLoop(backend: Backend, ackRetry: AckRetry): Promise<void> {
    const finished = this.#finished.signal;
    /** Set while heartbeats fail: the rescue sweep waits for one to get through (ack-retry.ts). */
    let failing: (() => void) | undefined;
    const recovered = (): void => {
      failing?.();
      failing = undefined;
    };
    const { clock } = this.#deps;
    while (!finished.aborted) {
      const sleptAt = clock.now();
      const launched = this.#launched;
      const held = this.#running.size + this.#acking.size > 0;
      await clock.sleep(this.#settings.heartbeatMs, finished).catch(() => {});
      // Late by the time the event loop was kept from running it: a handler blocking it holds up
      // every heartbeat (blocked-loop.ts). A fake clock moves in steps a test chooses: no block.
      if (!(clock instanceof FakeClock) && (held || launched !== this.#launched || this.#running.size + this.#acking.size > 0)) {
        const warning = blockedLoopWarning(clock.now() - sleptAt - this.#settings.heartbeatMs, this.#settings.leaseMs, this.id);
        if (warning !== undefined) process.emitWarning(warning, { code: "OFFLOAD_EVENT_LOOP_BLOCKED" });
      }
      // Its own call: a local of this loop, such as the runs a heartbeat sent, stays alive while
      // the loop sleeps (a suspended async function keeps its dead locals), and an idle worker kept
      // the runs of its last busy moment, with their jobs' payloads, until work came again.
      const beat = await this.#beat(backend, finished);
      if (beat === "stopped") break;
      if (typeof beat === "object") {
        failing ??= ackRetry.failingFrom();
        this.#report(beat.error);
      } else {
        recovered(); // renewed, or no lease of ours is left for the sweep to take
      }
    }
    recovered();
  }

  /** One heartbeat: renews the leases of this worker's runs, and stops those it learns are lost or cancelled. */
  async #beat(backend: Backend, finished: AbortSignal): Promise<"idle" | "renewed" | "stopped" | { readonly error: unknown }> {
    // Every run whose lease is still ours, aborted or not: a run stopped by its timeout or a
    // cancel request is writing that outcome (retried for seconds if the backend is failing), and
    // its lease must outlive the write, or the job is rescued and the outcome is lost. Left out:
    // a run whose lease was lost, and a stale run of a job claimed again (ids stay unique).
    const running = [...this.#running.values(), ...this.#acking.values()].filter(
      (r) => this.#current.get(r.claimed.job.id) === r && !(r.control.signal.reason instanceof LeaseLost),
    );
    if (running.length === 0) return "idle";
    try {
      const leases = running.map((r) => ({ id: r.claimed.job.id, token: r.claimed.token }));
      // Once stop() has seen every run end, nothing is left for the reply to renew: a request
      // hanging on a dead connection must not hold stop() up.
      const result = await unlessAborted(backend.heartbeat({ worker: this.id, leases, leaseMs: this.#settings.leaseMs, now: this.#deps.clock.now() }), finished);
      if (result === undefined) return "stopped";
      // Only the newest run of a job is heartbeated (a stale one was aborted), so ids are
      // unambiguous within this request. The answer is about the runs that were sent, not about
      // whichever run is newest when it arrives: while it was on its way the job may have been
      // rescued and claimed again by this worker, and that new run's lease is not lost.
      const sent = new Map(running.map((r) => [r.claimed.job.id, r]));
      for (const id of result.lost) sent.get(id)?.control.abort(new LeaseLost());
      for (const id of result.cancelRequested) {
        const run = sent.get(id);
        if (run && this.#running.has(run.claimed.token)) run.control.abort(new CancelRequested());
      }
      return "renewed";
    } catch (error) {
      return { error };
    }
  }

  /**
   * Tries a hand-back up to five times, for at most one lease (by then the lease has freed the
   * jobs anyway) and at most HAND_BACK_WITHIN_MS (a ten-minute lease must not hold a shutdown for
   * ten minutes: an orchestrator kills the process long before). Each try is given up on at that deadline too, as a call on a connection that is
   * being made again may wait a whole reply timeout, and five of them kept stop() for most of a
   * minute in a Redis outage (past any orchestrator's kill). A try given up on may still land
   * later: a release is fenced by its lease token, so a late one frees the job or does nothing.
   */
  async #withRetry<T>(work: () => Promise<T>, jobs: number): Promise<T | undefined> {
    const { clock } = this.#deps;
    const budgetMs = Math.min(this.#settings.leaseMs, HAND_BACK_WITHIN_MS);
    const deadline = new AbortController();
    const timer = new AbortController();
    void clock.sleep(budgetMs, timer.signal).then(() => deadline.abort(), () => {});
    try {
      const attempts = 5;
      for (let attempt = 1; attempt <= attempts && !deadline.signal.aborted; attempt++) {
        try {
          const done = await unlessAborted(work().then((value) => ({ value })), deadline.signal);
          if (done) return done.value;
        } catch (error) {
          this.#report(error);
          // A pause only before another try: after the last one it would just delay stop().
          if (attempt < attempts) await clock.sleep(100 * 2 ** attempt, deadline.signal).catch(() => {});
        }
      }
      if (deadline.signal.aborted) {
        this.#report(new Error(`could not hand back ${jobs === 1 ? "1 job" : `${jobs} jobs`} within ${budgetMs} ms; they return to the queue as their leases expire`));
      }
      return undefined;
    } finally {
      timer.abort();
    }
  }

  /**
   * A listener that throws must not break the worker: thrown out of a launch, it left the job
   * holding a slot and a renewed lease without ever running, and rejected the claim's promise
   * with nobody to catch it (a crash); thrown out of stop(), it left jobs unreleased.
   */
  #emitJob(event: WorkerEvent): void {
    try {
      this.emit("job", event);
    } catch (error) {
      this.#report(error);
    }
  }

  /**
   * What the app hears of a failure: a server that cannot take a call is the same
   * BackendUnavailableError its own calls get (the driver's error as its cause), so one listener
   * can count outages on every backend without knowing ioredis's or pg's messages.
   */
  #report(error: unknown): void {
    const backend = this.#backend;
    const err = toError(backend === undefined ? error : forCaller(backend, error));
    if (this.listenerCount("error") > 0) this.emit("error", err);
    else process.emitWarning(`offload worker ${this.id}: ${err.message}`);
  }
}

