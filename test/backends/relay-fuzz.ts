// A randomized model of the outbox relay, without test cases of its own
// (postgres-relay-fuzz.redis.postgres.test.ts runs it). One seeded schedule of steps (enqueues,
// relay rounds alone and in pairs, clock jumps, cancels, destination workers, relay deaths,
// destination prunes) drives 2-3 OutboxRelays from a real PostgreSQL outbox to a real Redis
// destination, through fault layers that break the calls the relay makes. The outcome is then
// checked against what docs/postgres.md promises of the relay. The relay tests pin down each
// fault on its own; this finds the combinations nobody thought to write down.
import type { Backend, EnqueueResult, NewJob, RescueResult } from "../../src/backend/backend.ts";
import { OutboxRelay } from "../../src/backend/postgres/outbox-relay.ts";
import { FakeClock } from "../../src/core/clock.ts";
import { OffloadError } from "../../src/core/errors.ts";
import type { ClaimedJob, JobRecord } from "../../src/core/job.ts";
import { seededRandom } from "../conformance/differential-model.ts";
import { T0, replacing } from "../conformance/fixtures.ts";

/** Short, so that clock jumps expire leases and rescue runs within one schedule. */
const LEASE = 1_000;
/** "bad" is the queue the destination may refuse with a verdict of its own. */
const QUEUES = ["mail", "bulk", "bad"] as const;
const KEYS = ["k0", "k1", "k2"] as const;
const HOUR = 3_600_000;
/** Rounds of the healed relays after the schedule; far more than a seed needs to settle. */
const SETTLE_ROUNDS = 60;
const EVERYTHING = 100_000;

export interface FuzzOptions {
  readonly steps: number;
  /** Whether "prune" steps prune the destination (short retention: delivered jobs disappear there). */
  readonly prune: boolean;
}

export interface FuzzOutcome {
  /** Broken promises: each one fails the seed. */
  readonly violations: readonly string[];
  /** The documented limitation (see docs/postgres.md, the relay's caveats): reported, allowed. */
  readonly caveats: readonly string[];
}

type Step =
  | { readonly k: "enqueue"; readonly n: number; readonly r: number }
  | { readonly k: "relay"; readonly relay: number }
  | { readonly k: "pair"; readonly a: number; readonly b: number }
  | { readonly k: "advance"; readonly ms: number }
  | { readonly k: "faults"; readonly r: number }
  | { readonly k: "heal" }
  | { readonly k: "cancel"; readonly r: number }
  | { readonly k: "drain"; readonly n: number }
  | { readonly k: "kill"; readonly relay: number; readonly after: number; readonly mode: DeathMode }
  | { readonly k: "prune" };

/** A dying call either never reaches the backend, or reaches it and its reply is lost. */
type DeathMode = "before" | "after";

/** The faults in force until the next "faults" or "heal" step. Probabilities are per call. */
interface Faults {
  /** Every destination call fails with a plain error: must never cost an attempt. */
  readonly outage: boolean;
  /** Queue "bad" is refused with a typed OffloadError (a verdict of the destination). */
  readonly refuseBad: boolean;
  /** These ids always fail their enqueue with a plain error. */
  readonly poison: ReadonlySet<string>;
  /** An enqueue stores its jobs, then throws. */
  readonly loseReply: number;
  readonly getJobFail: number;
  /** An enqueue throws a plain error without storing. */
  readonly blip: number;
  /** A cancel of one of the jobs arrives in the outbox while the relay delivers them. */
  readonly cancelInDelivery: number;
  /** Outbox writes that fail half the time, before or after reaching the database. */
  readonly sourceWrites: ReadonlyMap<string, DeathMode>;
}

const HEALTHY: Faults = { outage: false, refuseBad: false, poison: new Set(), loseReply: 0, getJobFail: 0, blip: 0, cancelInDelivery: 0, sourceWrites: new Map() };
const FAULTABLE_SOURCE_WRITES = ["complete", "fail", "release", "heartbeat", "acknowledgeCancel", "claim"] as const;

/** Every call of the port; the fault and death layers see each one the relay makes. */
const PORT_CALLS = [
  "enqueue", "claim", "heartbeat", "complete", "fail", "acknowledgeCancel", "release", "progress", "log", "cancel",
  "retry", "replay", "stageDue", "rescueExpired", "prune", "getJob", "listJobs", "counts", "nextDueAt", "readEvents",
] as const satisfies readonly (keyof Backend)[];

type Call = () => Promise<unknown>;
type Hook = (name: string, args: readonly unknown[], call: Call) => Promise<unknown>;

/** The backend with every port call passed through `hook`, which decides whether and how to make it. */
function intercepting(backend: Backend, hook: Hook): Backend {
  const operations: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of PORT_CALLS) {
    const real = backend[name] as (...args: unknown[]) => Promise<unknown>;
    operations[name] = (...args) => hook(name, args, () => real.apply(backend, args));
  }
  return replacing(backend, operations as Partial<Backend>);
}

/**
 * How a dead relay's calls look from inside it: they never settle while the seed runs. Once it is
 * checked they are rejected, so the dead rounds unwind and clear their lease-renewal timers
 * (otherwise those real intervals keep the test process alive).
 */
class Grave {
  readonly calls: Promise<never>;
  #bury: (reason: Error) => void = () => undefined;

  constructor() {
    this.calls = new Promise<never>((_resolve, reject) => (this.#bury = reject));
    this.calls.catch(() => undefined); // rejected on purpose: not an unhandled rejection
  }

  bury(): void {
    this.#bury(new Error("relay fuzz: this relay died"));
  }
}

export function generateSchedule(seed: number, steps: number): Step[] {
  const random = seededRandom(seed * 7_919 + 1);
  const int = (n: number): number => Math.floor(random() * n);
  const schedule: Step[] = [];
  for (let i = 0; i < steps; i++) schedule.push(pickStep(random(), random, int));
  return schedule;
}

/** Step kinds by cumulative weight: relay rounds are the most frequent, relay deaths and prunes rare. */
function pickStep(x: number, random: () => number, int: (n: number) => number): Step {
  if (x < 0.18) return { k: "enqueue", n: 1 + int(5), r: int(1e9) };
  if (x < 0.45) return { k: "relay", relay: int(3) };
  if (x < 0.52) return { k: "pair", a: int(3), b: int(3) };
  if (x < 0.64) return { k: "advance", ms: [100, 500, 1_100, 3_000, 2 * HOUR][int(5)] ?? 100 };
  if (x < 0.74) return { k: "faults", r: int(1e9) };
  if (x < 0.78) return { k: "heal" };
  if (x < 0.86) return { k: "cancel", r: int(1e9) };
  if (x < 0.93) return { k: "drain", n: 1 + int(4) };
  if (x < 0.97) return { k: "kill", relay: int(3), after: int(8), mode: random() < 0.5 ? "before" : "after" };
  return { k: "prune" };
}

/** A UUIDv7-shaped id from the clock, a counter and the seed: the same on every run of a seed. */
function fuzzId(ms: number, n: number, seed: number): string {
  const time = ms.toString(16).padStart(12, "0");
  const counter = n.toString(16).padStart(3, "0");
  const tail = ((seed * 2_654_435_761 + n * 40_503) >>> 0).toString(16).padStart(8, "0");
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${counter}-8000-0000${tail}`;
}

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`relay fuzz: no ${what}`);
  return value;
}

/** What the harness saw happen to each outbox job, to explain (or not) its final state. */
class Observations {
  readonly outboxIds: string[] = [];
  /** Creations at the destination by id: more than one is a duplicate delivery. */
  readonly created = new Map<string, number>();
  /** Jobs that met their key's holder at the destination (created: false), and that holder. */
  readonly holderOf = new Map<string, string>();
  /** Kinds of refusal a job met when it was the only one of its enqueue. */
  readonly refusalCauses = new Map<string, Set<string>>();
  /** Lease expiries explained by a relay death or a failed outbox write. */
  readonly expiryExcuses = new Map<string, number>();
  /** Ids whose read at the destination failed (a fault, an outage, a relay dying at it). */
  readonly unreadable = new Set<string>();
  readonly cancelAnswers = new Map<string, string[]>();
  /** How many errors a job had when the relay put it back in the queue (its attempts restart). */
  readonly errorsAtRequeue = new Map<string, number>();
  /** What the relays reported through onError: a reported divergence is not a silent one. */
  readonly reports: string[] = [];
  readonly resets: string[] = [];

  refused(id: string, kind: string): void {
    const kinds = this.refusalCauses.get(id) ?? new Set<string>();
    kinds.add(kind);
    this.refusalCauses.set(id, kinds);
  }

  excuseExpiry(id: string): void {
    this.expiryExcuses.set(id, (this.expiryExcuses.get(id) ?? 0) + 1);
  }

  cancelled(id: string, answer: string): void {
    this.cancelAnswers.set(id, [...(this.cancelAnswers.get(id) ?? []), answer]);
  }
}

/** One relay and the layer that kills it: once dead, none of its calls ever settle. */
interface FuzzRelay {
  readonly name: string;
  relay: OutboxRelay;
  dead: boolean;
  /** Calls left before it dies; undefined while no kill is planned. */
  dieIn: number | undefined;
  mode: DeathMode;
  /** The ids of its current batch: their leases run out with it. */
  held: string[];
  /** Jobs its last rescue ended failed, which it reads at the destination next (to requeue them). */
  rescuedFailed: readonly string[];
  onDeath: (() => void) | undefined;
}

/** Runs one seed against a fresh (empty) outbox and destination, and checks the outcome. */
export async function fuzzRelay(seed: number, options: FuzzOptions, source: Backend, destination: Backend): Promise<FuzzOutcome> {
  const run = new FuzzRun(seed, options, source, destination);
  try {
    await run.play(generateSchedule(seed, options.steps));
    await run.settle();
    return await run.check();
  } finally {
    run.buryTheDead();
  }
}

class FuzzRun {
  readonly #seed: number;
  readonly #options: FuzzOptions;
  readonly #source: Backend;
  readonly #destination: Backend;
  readonly #clock = new FakeClock(T0);
  readonly #seen = new Observations();
  readonly #faultySource: Backend;
  readonly #faultyDestination: Backend;
  readonly #relays: FuzzRelay[] = [];
  readonly #grave = new Grave();
  #faults: Faults = HEALTHY;
  /** Draws for the fault layers; reseeded at each step so a step's faults do not shift with earlier ones. */
  #chance: () => number;
  #idCounter = 0;
  #settled = true;

  constructor(seed: number, options: FuzzOptions, source: Backend, destination: Backend) {
    this.#seed = seed;
    this.#options = options;
    this.#source = source;
    this.#destination = destination;
    this.#chance = seededRandom(seed);
    this.#faultySource = intercepting(source, (name, args, call) => this.#sourceFault(name, args, call));
    const recorded = intercepting(destination, (name, args, call) => (name === "enqueue" ? this.#recordEnqueue(args, call) : call()));
    this.#faultyDestination = intercepting(recorded, (name, args, call) => this.#destinationFault(name, args, call));
    const relayCount = 2 + (seed % 2);
    for (let i = 0; i < relayCount; i++) this.#relays.push(this.#newRelay(i, 1 + ((seed + i * 3) % 5)));
  }

  async play(schedule: readonly Step[]): Promise<void> {
    for (const [i, step] of schedule.entries()) {
      this.#chance = seededRandom(this.#seed * 1_000 + i + 1);
      await this.#step(step);
    }
  }

  /** Heals every fault and runs the live relays, hours apart, until the outbox has nothing open. */
  async settle(): Promise<void> {
    this.#faults = HEALTHY;
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      this.#clock.advance(2 * HOUR);
      for (const relay of this.#relays.filter((r) => !r.dead)) await this.#runRelay(relay);
      if (!this.#relays.some((r) => !r.dead)) await this.#runRelay(this.#liveRelay(0));
      if ((await this.#openInOutbox()) === 0) return;
    }
    this.#settled = false;
  }

  buryTheDead(): void {
    this.#grave.bury();
  }

  async check(): Promise<FuzzOutcome> {
    const violations: string[] = [];
    const caveats: string[] = [];
    if (!this.#settled) violations.push(`the outbox still had open jobs after ${SETTLE_ROUNDS} healed rounds`);
    for (const reset of this.#seen.resets) violations.push(`a redelivery reset a destination job: ${reset}`);
    violations.push(...(await this.#wrongPayloads()));
    for (const id of this.#seen.outboxIds) {
      const outbox = must(await this.#source.getJob(id), `outbox row ${id}`);
      const found = await this.#destination.getJob(id);
      for (const finding of this.#judge(id, outbox, found)) (finding.allowed ? caveats : violations).push(finding.text);
    }
    return { violations, caveats };
  }

  async #step(step: Step): Promise<void> {
    switch (step.k) {
      case "enqueue":
        return this.#enqueue(step.n, seededRandom(step.r));
      case "relay":
        await this.#runRelay(this.#liveRelay(step.relay));
        return;
      case "pair":
        return this.#runPair(this.#liveRelay(step.a), this.#liveRelay(step.b));
      case "advance":
        this.#clock.advance(step.ms);
        return;
      case "faults":
        this.#faults = this.#drawFaults(seededRandom(step.r));
        return;
      case "heal":
        this.#faults = HEALTHY;
        return;
      case "cancel":
        return this.#cancelOne(seededRandom(step.r));
      case "drain":
        return this.#drainDestination(step.n);
      case "kill":
        return this.#kill(step.relay, step.after, step.mode);
      case "prune":
        return this.#pruneDestination();
    }
  }

  async #enqueue(n: number, random: () => number): Promise<void> {
    const int = (k: number): number => Math.floor(random() * k);
    const now = this.#clock.now();
    const jobs: NewJob[] = [];
    for (let j = 0; j < n; j++) {
      const id = fuzzId(now, ++this.#idCounter, this.#seed);
      jobs.push({
        id,
        task: "t",
        queue: must(QUEUES[int(QUEUES.length)], "queue"),
        payloadJson: JSON.stringify({ marker: id }), // tells a redelivered job from another with its id
        priority: int(3) * 5,
        runAt: random() < 0.2 ? now + must([500, 2_000, 60_000][int(3)], "delay") : now,
        maxAttempts: 1 + int(4),
        key: random() < 0.3 ? KEYS[int(KEYS.length)] : undefined,
        owner: undefined,
      });
    }
    const results = await this.#source.enqueue({ jobs, now });
    results.forEach((result, j) => {
      if (result.created) this.#seen.outboxIds.push(must(jobs[j], "job").id);
    });
  }

  #drawFaults(random: () => number): Faults {
    const ids = this.#seen.outboxIds;
    const poison = random() < 0.25 && ids.length > 0 ? new Set([must(ids[Math.floor(random() * ids.length)], "id")]) : new Set<string>();
    const faults = {
      outage: random() < 0.2,
      refuseBad: random() < 0.3,
      poison,
      loseReply: random() < 0.3 ? 0.3 : 0,
      getJobFail: random() < 0.2 ? 0.2 : 0,
      blip: random() < 0.15 ? 0.2 : 0,
      cancelInDelivery: random() < 0.3 ? 0.3 : 0,
      sourceWrites: new Map<string, DeathMode>(),
    };
    for (const write of FAULTABLE_SOURCE_WRITES) {
      if (random() < 0.12) faults.sourceWrites.set(write, random() < 0.5 ? "before" : "after");
    }
    return faults;
  }

  async #cancelOne(random: () => number): Promise<void> {
    const ids = this.#seen.outboxIds;
    if (ids.length === 0) return;
    const id = must(ids[Math.floor(random() * ids.length)], "id");
    this.#seen.cancelled(id, await this.#source.cancel(id, this.#clock.now()));
  }

  /** A destination worker runs a few jobs, so that redeliveries meet finished jobs too. */
  async #drainDestination(n: number): Promise<void> {
    const now = this.#clock.now();
    const claimed = await this.#destination.claim({ queues: QUEUES, limit: n, worker: "dw", leaseMs: 60_000, now });
    if (claimed.length > 0) await this.#destination.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "null" })), now);
  }

  async #pruneDestination(): Promise<void> {
    if (!this.#options.prune) return;
    const keep = LEASE * 3;
    await this.#destination.prune({ succeeded: keep, failed: keep, cancelled: keep }, this.#clock.now());
  }

  async #kill(index: number, afterCalls: number, mode: DeathMode): Promise<void> {
    const relay = this.#liveRelay(index);
    // Keep the schedule from spawning relays without end: the last one of many stays alive.
    if (this.#relays.filter((r) => !r.dead).length <= 1 && this.#relays.length >= 4) return;
    relay.dieIn = afterCalls;
    relay.mode = mode;
    await this.#runRelay(relay);
    if (!relay.dead) relay.dieIn = undefined;
  }

  async #runPair(a: FuzzRelay, b: FuzzRelay): Promise<void> {
    await Promise.all(a === b ? [this.#runRelay(a)] : [this.#runRelay(a), this.#runRelay(b)]);
  }

  /** One round of the relay; settles when the round does, or when the relay dies in it. */
  async #runRelay(relay: FuzzRelay): Promise<void> {
    const died = new Promise<void>((resolve) => (relay.onDeath = resolve));
    // A round that throws is a round the relay's loop would log and retry: part of the schedule.
    await Promise.race([relay.relay.relayBatch().catch(() => undefined), died]);
  }

  /** A live relay (the i-th, modulo); a new one if all have died. */
  #liveRelay(i: number): FuzzRelay {
    const alive = this.#relays.filter((r) => !r.dead);
    if (alive.length > 0) return must(alive[i % alive.length], "relay");
    const relay = this.#newRelay(this.#relays.length, 3);
    this.#relays.push(relay);
    return relay;
  }

  #newRelay(i: number, batchSize: number): FuzzRelay {
    const relay: FuzzRelay = { name: `r${i}`, relay: undefined as unknown as OutboxRelay, dead: false, dieIn: undefined, mode: "before", held: [], rescuedFailed: [], onDeath: undefined };
    relay.relay = new OutboxRelay({
      from: intercepting(this.#faultySource, (name, _args, call) => this.#mortal(relay, "source", name, call)),
      to: intercepting(this.#faultyDestination, (name, _args, call) => this.#mortal(relay, "destination", name, call)),
      clock: this.#clock,
      leaseMs: LEASE,
      batchSize,
      id: relay.name,
      queues: i === 2 ? undefined : [...QUEUES], // one relay discovers its queues
      onError: (error) => this.#seen.reports.push(`${relay.name}: ${String(error)}`),
    });
    return relay;
  }

  /** The death layer of one relay: counts its calls down, then dies at one (before or after it runs). */
  async #mortal(relay: FuzzRelay, side: "source" | "destination", name: string, call: Call): Promise<unknown> {
    if (relay.dead) return this.#grave.calls;
    if (side === "source" && name === "rescueExpired") {
      relay.held = [];
      relay.rescuedFailed = [];
    }
    if (relay.dieIn !== undefined && relay.dieIn-- <= 0) return this.#die(relay, side, name, call);
    const result = await call();
    noteResult(relay, side, name, result);
    return result;
  }

  async #die(relay: FuzzRelay, side: "source" | "destination", name: string, call: Call): Promise<never> {
    relay.dead = true;
    if (relay.mode === "after") {
      const result = await call().catch(() => undefined);
      if (result !== undefined) noteResult(relay, side, name, result);
    }
    for (const id of relay.held) this.#seen.excuseExpiry(id);
    // A relay dying before it read (and requeued) the failed jobs of its rescue leaves them failed.
    for (const id of relay.rescuedFailed) this.#seen.unreadable.add(id);
    relay.onDeath?.();
    return this.#grave.calls;
  }

  async #sourceFault(name: string, args: readonly unknown[], call: Call): Promise<unknown> {
    if (name === "retry") return this.#recordRequeue(String(args[0]), call);
    const mode = this.#faults.sourceWrites.get(name);
    if (mode === undefined || this.#chance() >= 0.5) return call();
    if (name === "claim") {
      // A claim whose reply is lost: the claimed jobs stay leased until rescue.
      if (mode === "after") for (const c of (await call()) as ClaimedJob[]) this.#seen.excuseExpiry(c.job.id);
    } else {
      for (const id of leaseIds(name, args[0])) this.#seen.excuseExpiry(id);
      if (mode === "after") await call();
    }
    throw new Error(`Connection terminated unexpectedly (${name})`);
  }

  async #recordRequeue(id: string, call: Call): Promise<unknown> {
    const before = await this.#source.getJob(id);
    const status = await call();
    if (status === "QUEUED" && before) this.#seen.errorsAtRequeue.set(id, before.errors.length);
    return status;
  }

  async #destinationFault(name: string, args: readonly unknown[], call: Call): Promise<unknown> {
    if (this.#faults.outage || (name === "getJob" && this.#chance() < this.#faults.getJobFail)) {
      if (name === "getJob") this.#seen.unreadable.add(String(args[0]));
      throw new Error(this.#faults.outage ? "connect ECONNREFUSED 127.0.0.1:6379 (outage)" : "ERR getJob failed");
    }
    if (name !== "enqueue") return call();
    const jobs = (args[0] as { readonly jobs: readonly NewJob[] }).jobs;
    const alone = jobs.length === 1 ? jobs[0] : undefined;
    if (this.#faults.refuseBad && jobs.some((j) => j.queue === "bad")) {
      if (alone?.queue === "bad") this.#seen.refused(alone.id, "typed");
      throw new OffloadError("VALIDATION", "queue bad is not served here");
    }
    const poisoned = jobs.find((j) => this.#faults.poison.has(j.id));
    if (poisoned) {
      if (alone) this.#seen.refused(poisoned.id, "poison");
      throw new Error(`ERR poison ${poisoned.id}`);
    }
    if (this.#chance() < this.#faults.blip) {
      if (alone) this.#seen.refused(alone.id, "blip");
      throw new Error("ERR blip");
    }
    if (this.#chance() < this.#faults.loseReply) {
      await call();
      if (alone) this.#seen.refused(alone.id, "lost reply");
      throw new Error("Connection reset (reply lost)");
    }
    return call();
  }

  /** Innermost destination layer: which enqueues created a job, met a key holder, or reset a job. */
  async #recordEnqueue(args: readonly unknown[], call: Call): Promise<unknown> {
    const jobs = (args[0] as { readonly jobs: readonly NewJob[] }).jobs;
    await this.#maybeCancelDuringDelivery(jobs);
    const before = new Map<string, string | undefined>();
    for (const job of jobs) before.set(job.id, (await this.#destination.getJob(job.id))?.state);
    const results = (await call()) as EnqueueResult[];
    for (const [i, result] of results.entries()) await this.#recordResult(must(jobs[i], "job").id, before.get(must(jobs[i], "job").id), result);
    return results;
  }

  async #maybeCancelDuringDelivery(jobs: readonly NewJob[]): Promise<void> {
    if (jobs.length === 0 || this.#chance() >= this.#faults.cancelInDelivery) return;
    const id = must(jobs[Math.floor(this.#chance() * jobs.length)], "job").id;
    this.#seen.cancelled(id, await this.#source.cancel(id, this.#clock.now()));
  }

  async #recordResult(id: string, stateBefore: string | undefined, result: EnqueueResult): Promise<void> {
    if (!result.created) {
      this.#seen.holderOf.set(id, result.job.id);
    } else if (stateBefore === undefined) {
      this.#seen.created.set(id, (this.#seen.created.get(id) ?? 0) + 1);
    } else {
      // An enqueue that meets its own id must leave the job as it was.
      const stateAfter = (await this.#destination.getJob(id))?.state;
      if (stateAfter !== stateBefore) this.#seen.resets.push(`${id} ${stateBefore} -> ${String(stateAfter)}`);
    }
  }

  async #openInOutbox(): Promise<number> {
    const counts = await this.#source.counts();
    return counts.reduce((n, q) => n + q.counts.queued + q.counts.active + q.counts.retrying + q.counts.scheduled, 0);
  }

  /** Each destination job carries the marker of the outbox job it came from, once. */
  async #wrongPayloads(): Promise<string[]> {
    const problems: string[] = [];
    const copies = new Map<string, number>();
    for (const job of await this.#destination.listJobs({ limit: EVERYTHING })) {
      const marker = (job.payload as { marker?: string } | null)?.marker ?? "?";
      copies.set(marker, (copies.get(marker) ?? 0) + 1);
      if (job.id !== marker) problems.push(`destination job ${job.id} carries the payload of ${marker}`);
    }
    for (const [marker, n] of copies) if (n > 1) problems.push(`delivered twice: ${n} destination jobs carry ${marker}`);
    return problems;
  }

  #judge(id: string, outbox: JobRecord, found: JobRecord | undefined): Array<{ text: string; allowed: boolean }> {
    const seen = this.#seen;
    const created = seen.created.get(id) ?? 0;
    const holder = seen.holderOf.get(id);
    const delivered = created > 0 || holder !== undefined;
    const errors = outbox.errors.map((e) => e.name);
    const refusals = errors.filter((e) => e === "RelayRefused").length;
    const expiries = errors.filter((e) => e === "LeaseExpired").length;
    const causes = [...(seen.refusalCauses.get(id) ?? [])];
    const cancels = seen.cancelAnswers.get(id) ?? [];
    const reported = seen.reports.some((r) => r.includes(id));
    const describe = `${id} [${outbox.queue} max ${outbox.maxAttempts}${outbox.key ? ` key ${outbox.key}` : ""}] outbox=${outbox.state} attempt=${outbox.attempt} errors=${errors.join(",")} destination=${found?.state ?? "-"} created=${created} holder=${holder ?? "-"} refusals met=${causes.join(",")} cancels=${cancels.join(",")}`;
    const findings: Array<{ text: string; allowed: boolean }> = [];
    const fail = (what: string): void => void findings.push({ text: `${what}: ${describe}`, allowed: false });
    if (created > 1) fail("delivered twice");
    if (["queued", "active", "retrying", "scheduled"].includes(outbox.state)) fail("left open");
    if (outbox.state === "succeeded" && !delivered) fail("marked relayed but never delivered");
    if (outbox.state === "succeeded" && !found && holder === undefined && !this.#options.prune) fail("marked relayed but missing at the destination");
    if (refusals > 0 && causes.length === 0) fail("RelayRefused without a refusal fault");
    if (expiries > (seen.expiryExcuses.get(id) ?? 0)) fail("LeaseExpired without a relay death or failed outbox write");
    if (outbox.state === "failed" && refusals === 0 && expiries === 0) fail("failed without an error");
    if (outbox.state === "failed" && delivered) {
      if (this.#isDocumentedCaveat(id, errors, found, holder)) findings.push({ text: `failed in the outbox but delivered (documented caveat): ${describe}`, allowed: true });
      else fail("failed in the outbox but delivered");
    }
    if (outbox.state === "cancelled" && delivered && found && found.state !== "cancelled" && !found.cancelRequested && !reported) {
      fail(found.state === "succeeded" ? "cancelled in the outbox, ran at the destination, not reported" : "cancelled in the outbox, live at the destination, not reported");
    }
    if (outbox.state === "succeeded" && cancels.includes("CANCEL_REQUESTED") && !reported && (!found || !["cancelled", "succeeded"].includes(found.state)) && !found?.cancelRequested) {
      fail("a cancel asked for while the relay held the job was dropped silently");
    }
    const attemptsCounted = errors.length - (seen.errorsAtRequeue.get(id) ?? 0) + (outbox.state === "succeeded" ? 1 : 0);
    if (outbox.state === "succeeded" && outbox.attempt !== attemptsCounted) fail(`attempt ${outbox.attempt}, expected ${attemptsCounted}`);
    return findings;
  }

  /**
   * docs/postgres.md (the relay's caveats): a delivered job whose relay died (or failed to mark
   * it) and whose lease ran out on its last attempt ends failed; the relay puts it back only if it
   * finds it at the destination. So this is allowed when it could not: the read failed, the job is
   * stored as its key's holder, or (pruning) the destination already dropped it.
   */
  #isDocumentedCaveat(id: string, errors: readonly string[], found: JobRecord | undefined, holder: string | undefined): boolean {
    if (errors.at(-1) !== "LeaseExpired") return false;
    return this.#seen.unreadable.has(id) || (holder !== undefined && (this.#seen.created.get(id) ?? 0) === 0) || (this.#options.prune && !found);
  }
}

/** What a relay holds after a call: the batch it claimed, the failed jobs of its rescue. */
function noteResult(relay: FuzzRelay, side: "source" | "destination", name: string, result: unknown): void {
  if (side !== "source") return;
  if (name === "claim") relay.held = (result as ClaimedJob[]).map((c) => c.job.id);
  if (name === "rescueExpired") relay.rescuedFailed = (result as RescueResult).failed;
}

/** The ids whose leases an outbox write covers. */
function leaseIds(name: string, request: unknown): string[] {
  if (name === "complete" || name === "release") return (request as ReadonlyArray<{ readonly id: string }>).map((l) => l.id);
  if (name === "heartbeat") return (request as { readonly leases: ReadonlyArray<{ readonly id: string }> }).leases.map((l) => l.id);
  if (name === "fail" || name === "acknowledgeCancel") return [(request as { readonly id: string }).id];
  return [];
}

