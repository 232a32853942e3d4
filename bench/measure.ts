// Small measuring helpers shared by the benchmark scripts. Figures are rates from one run;
// compare systems within the same run, never across runs.
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";

export interface Row {
  readonly metric: string;
  readonly values: Readonly<Record<string, number | undefined>>;
  readonly unit: string;
}

/** High-resolution wall time that two processes on one machine agree on (ms, fractional). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function perSecond(count: number, ms: number): number {
  return Math.round(count / (ms / 1000));
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

export function option(args: readonly string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  const inline = args.find((a) => a.startsWith(`--${name}=`));
  if (inline) return inline.slice(name.length + 3);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}

function format(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  if (unit === "ms") return value.toFixed(2);
  if (unit === "MiB") return value.toFixed(0);
  return Math.round(value).toLocaleString("en-US");
}

/**
 * Prints one column per system and, when `baseline` is given, a ratio column per other system:
 * Offload's figure divided by theirs (for latencies, theirs divided by Offload's, so > 1 always
 * means Offload is better).
 */
export function printTable(title: string, systems: readonly string[], rows: readonly Row[], baseline?: string): void {
  const others = baseline ? systems.filter((s) => s !== baseline) : [];
  const header = ["metric", "unit", ...systems, ...others.map((o) => `× vs ${o}`)];
  const lines = rows.map((row) => {
    const cells = systems.map((s) => format(row.values[s], row.unit));
    const ratios = others.map((o) => {
      const ours = baseline ? row.values[baseline] : undefined;
      const theirs = row.values[o];
      if (ours === undefined || theirs === undefined || ours === 0 || theirs === 0) return "—";
      const lowerIsBetter = row.unit === "ms" || row.unit === "MiB";
      return `${(lowerIsBetter ? theirs / ours : ours / theirs).toFixed(2)}×`;
    });
    return [row.metric, row.unit, ...cells, ...ratios];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const render = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  console.log(`\n${title}\n`);
  console.log(render(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines) console.log(render(l));
}

/** Messages a benchmark child process sends back over IPC. */
export type ChildMessage =
  | { readonly type: "ready" }
  | { readonly type: "started"; readonly at: number; readonly id: string }
  | { readonly type: "drained"; readonly ms: number; readonly count: number; readonly maxRssMiB: number };

/** Starts a child process running `script` and hands its messages to `onMessage`. */
export function startChild(script: URL, args: readonly string[], onMessage: (m: ChildMessage) => void): { stop: () => Promise<void>; ready: Promise<void> } {
  const child = fork(script, [...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.on("message", (m: ChildMessage) => {
    if (m.type === "ready") markReady();
    onMessage(m);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    ready,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** What every system is measured on, the same way. */
export interface Figures {
  readonly enqueueOne: number;
  readonly enqueueBatch: number;
  readonly drain1: number;
  readonly drain50: number;
  readonly latencyP50: number;
  readonly latencyP99: number;
  readonly workerRssMiB: number;
}

/** Runs a drain in a child process (`script` with `args`) and returns its rate and peak RSS. */
export async function drainInChild(script: URL, args: readonly string[]): Promise<{ rate: number; rss: number }> {
  let result = { rate: 0, rss: 0 };
  let done: () => void = () => {};
  const drained = new Promise<void>((resolve) => (done = resolve));
  const child = startChild(script, args, (m: ChildMessage) => {
    if (m.type === "drained") {
      result = { rate: perSecond(m.count, m.ms), rss: m.maxRssMiB };
      done();
    }
  });
  await drained;
  await child.stop();
  return result;
}

/** The standard table of Figures, one column per system, ratios against Offload when it ran. */
/**
 * Runs every system once per round, the systems interleaved (a, b, c, a, b, c, …), and keeps
 * each system's figures of every round. This machine's speed drifts by tens of percent within
 * minutes; interleaving spreads the drift over all systems instead of favouring whoever ran
 * in a fast minute, and the median of each metric over the rounds drops an outlier round.
 */
export async function interleavedRounds<S extends string>(
  systems: readonly S[],
  rounds: number,
  measure: (system: S, round: number) => Promise<Figures>,
): Promise<Map<S, Figures[]>> {
  const all = new Map<S, Figures[]>(systems.map((s) => [s, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const system of systems) {
      console.log(`… ${system}${rounds > 1 ? ` (round ${round} of ${rounds})` : ""}`);
      all.get(system)?.push(await measure(system, round));
    }
  }
  return all;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** Each metric's median over the rounds, metric by metric. */
export function medianFigures(rounds: readonly Figures[]): Figures {
  const of = (pick: (f: Figures) => number): number => median(rounds.map(pick));
  return {
    enqueueOne: of((f) => f.enqueueOne),
    enqueueBatch: of((f) => f.enqueueBatch),
    drain1: of((f) => f.drain1),
    drain50: of((f) => f.drain50),
    latencyP50: of((f) => f.latencyP50),
    latencyP99: of((f) => f.latencyP99),
    workerRssMiB: of((f) => f.workerRssMiB),
  };
}

/**
 * Prints the median table of interleaved rounds, then (with more than one round) the headline
 * ratios of each round on its own, so the spread behind the medians is in plain sight.
 */
export function printRounds(title: string, systems: readonly string[], all: ReadonlyMap<string, readonly Figures[]>): void {
  const rounds = Math.max(0, ...[...all.values()].map((r) => r.length));
  const figures = Object.fromEntries([...all].map(([s, r]) => [s, r.length > 0 ? medianFigures(r) : undefined]));
  printFigures(rounds > 1 ? `${title}, median of ${rounds} interleaved rounds` : title, systems, figures);
  if (rounds < 2 || !systems.includes("offload")) return;
  console.log("\nEach round on its own (Offload's ratio to each peer):");
  for (let i = 0; i < rounds; i++) {
    const ours = all.get("offload")?.[i];
    if (!ours) continue;
    const parts = systems.filter((s) => s !== "offload").map((s) => {
      const peer = all.get(s)?.[i];
      return peer ? `${s} drain c=50 ${(ours.drain50 / peer.drain50).toFixed(2)}×, batched enqueue ${(ours.enqueueBatch / peer.enqueueBatch).toFixed(2)}×` : `${s} —`;
    });
    console.log(`  round ${i + 1}: offload drain c=50 ${Math.round(ours.drain50)} jobs/s; ${parts.join("; ")}`);
  }
}

export function printFigures(title: string, systems: readonly string[], figures: Readonly<Record<string, Figures | undefined>>): void {
  const row = (metric: string, unit: string, pick: (f: Figures) => number): Row => ({
    metric, unit, values: Object.fromEntries(systems.map((s) => { const f = figures[s]; return [s, f ? pick(f) : undefined]; })),
  });
  printTable(title, systems, [
    row("enqueue, one at a time", "jobs/s", (f) => f.enqueueOne),
    row("enqueue, batches of 1,000", "jobs/s", (f) => f.enqueueBatch),
    row("drain, concurrency 1", "jobs/s", (f) => f.drain1),
    row("drain, concurrency 50", "jobs/s", (f) => f.drain50),
    row("enqueue→start p50 (other process)", "ms", (f) => f.latencyP50),
    row("enqueue→start p99 (other process)", "ms", (f) => f.latencyP99),
    row("worker peak RSS (drain c=50)", "MiB", (f) => f.workerRssMiB),
  ], systems.includes("offload") ? "offload" : undefined);
}

/** How one system is driven through the standard measurement. */
export interface SystemDriver {
  /** Queue (or task) names for the three phases; each phase uses its own. */
  readonly queues: { readonly single: string; readonly batch: string; readonly latency: string };
  enqueueOne(queue: string, i: number): Promise<void>;
  enqueueMany(queue: string, items: number[]): Promise<void>;
  /** The worker child for `queue`: a "drain" of `count` jobs, or "latency" reporting each start. */
  child(mode: "drain" | "latency", queue: string, concurrency: number, count: number): { script: URL; args: string[] };
}

const BATCH = 1_000;

/**
 * The standard measurement, identical for every system: enqueue one at a time, enqueue in
 * batches of 1,000, drain each in a worker process at concurrency 1 and 50, then enqueue→start
 * latency into an idle worker process, one job at a time.
 */
export async function measureSystem(driver: SystemDriver, n: number, latencySamples = 300): Promise<Figures> {
  const { single, batch, latency } = driver.queues;
  const oneMs = await timed(async () => {
    for (let i = 0; i < n; i++) await driver.enqueueOne(single, i);
  });
  const batchMs = await timed(async () => {
    for (let i = 0; i < n; i += BATCH) await driver.enqueueMany(batch, Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => i + k));
  });
  const drainChild = (queue: string, concurrency: number): Promise<{ rate: number; rss: number }> => {
    const { script, args } = driver.child("drain", queue, concurrency, n);
    return drainInChild(script, args);
  };
  const drain1 = await drainChild(single, 1);
  const drain50 = await drainChild(batch, 50);

  const latencies: number[] = [];
  let onStart: (at: number) => void = () => {};
  const { script, args } = driver.child("latency", latency, 10, 0);
  const child = startChild(script, args, (m) => {
    if (m.type === "started") onStart(m.at);
  });
  await child.ready;
  for (let i = 0; i < latencySamples; i++) {
    const started = new Promise<number>((resolve) => (onStart = resolve));
    const sentAt = wallNow();
    await driver.enqueueOne(latency, i);
    latencies.push((await started) - sentAt);
  }
  await child.stop();
  return {
    enqueueOne: perSecond(n, oneMs),
    enqueueBatch: perSecond(n, batchMs),
    drain1: drain1.rate,
    drain50: drain50.rate,
    latencyP50: percentile(latencies, 50),
    latencyP99: percentile(latencies, 99),
    workerRssMiB: drain50.rss,
  };
}

/** Busy CPU seconds of the whole machine, all cores. */
export function machineBusySeconds(): number {
  const [, ...values] = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/);
  const v = values.map(Number);
  return (v.reduce((a, b) => a + b, 0) - (v[3] ?? 0) - (v[4] ?? 0)) / 100; // USER_HZ on Linux
}
