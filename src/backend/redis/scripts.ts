// The Lua scripts beside this module, loaded once by operation name and run by SHA. Every script
// is lib.lua (shared helpers) followed by its own file, so one script is one atomic step.
// EVALSHA first; on NOSCRIPT (a restarted or failed-over server forgot its script cache) the
// script is sent once with EVAL, which caches it again on that server.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";
import { InFlightCalls } from "./connection.ts";

const SCRIPT_NAMES = [
  "acknowledge-cancel", "cancel", "claim", "complete", "counts", "enqueue", "fail", "get-job", "heartbeat",
  "list-jobs", "log", "next-due", "peek-jobs", "progress", "prune", "reclaim", "release", "replay", "rescue-expired",
  "retry", "stage-due",
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

interface Script {
  readonly source: string;
  readonly sha: string;
}

function loadScripts(): Record<ScriptName, Script> {
  const read = (file: string): string => readFileSync(new URL(`./scripts/${file}`, import.meta.url), "utf8");
  const lib = read("lib.lua");
  const entries = SCRIPT_NAMES.map((name) => {
    const source = `${lib}\n${read(`${name}.lua`)}`;
    return [name, { source, sha: createHash("sha1").update(source).digest("hex") }];
  });
  return Object.fromEntries(entries) as Record<ScriptName, Script>;
}

let cached: Record<ScriptName, Script> | undefined;

export type Arg = string | number;

export class ScriptRunner {
  readonly #client: Redis | Cluster;
  readonly #scripts = (cached ??= loadScripts());
  /** The keys every call declares (see the constructor) and the common arguments, minus `now`. */
  readonly #keys: readonly [string, string];
  readonly #common: (now: number) => Arg[];
  readonly #inflight: InFlightCalls;
  #refusal: Error | undefined;

  /**
   * Every call declares two keys of the prefix's slot: `<prefix>queues`, which routes it, and
   * `<prefix>slot-guard`, which nothing ever writes. The scripts build every other key from the
   * prefix, so Redis Cluster cannot check those before running one. While the slot is being
   * moved to another node, keys go over one by one, and a script running on either node could
   * find some of its keys gone: it would stop half way on the old node ("non local key", its
   * writes so far kept, since scripts are not rolled back), or run on the new node over keys
   * not moved yet, creating them afresh. A declared key that is always missing makes Redis
   * refuse every call into a slot in migration before it runs (TRYAGAIN, on the new node at
   * the latest), and the client tries again until the move is over. A stable slot is never
   * checked for missing keys, so the guard costs nothing then.
   */
  constructor(client: Redis | Cluster, prefix: string, common: (now: number) => Arg[], connectWithinMs?: number) {
    this.#client = client;
    this.#inflight = new InFlightCalls(client, connectWithinMs);
    this.#keys = [`${prefix}queues`, `${prefix}slot-guard`];
    this.#common = common;
  }

  run(name: ScriptName, now: number, args: readonly Arg[]): Promise<unknown> {
    return this.#send(() => this.#run(name, now, args, false));
  }

  /** `run`, with the reply's strings left as Buffers (for replies that are parsed by bytes). */
  runBuffer(name: ScriptName, now: number, args: readonly Arg[]): Promise<unknown> {
    return this.#send(() => this.#run(name, now, args, true));
  }

  /** Every later call fails with `error` (a server found unfit, server-check.ts), or, given undefined, no longer. */
  refuse(error: Error | undefined): void {
    this.#refusal = error;
  }

  /** Fails the calls waiting for a connection, and every later call: the backend is closing. */
  close(): void {
    this.#inflight.close();
  }

  /** A plain read command, with the same protection against a connection dying under it. */
  read<T>(call: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    return this.#send(() => call(this.#client));
  }

  #send<T>(call: () => Promise<T>): Promise<T> {
    return this.#refusal === undefined ? this.#inflight.run(call) : Promise.reject(this.#refusal);
  }

  async #run(name: ScriptName, now: number, args: readonly Arg[], buffers: boolean): Promise<unknown> {
    const script = this.#scripts[name];
    // The arguments go as one array, never spread into a call: an enqueueMany of 50,000 jobs has
    // 450,000 of them, more than a JavaScript call can take ("Maximum call stack size exceeded").
    const tail = [this.#keys.length, ...this.#keys, ...this.#common(now), ...args];
    const client = this.#client;
    const call = (command: "EVALSHA" | "EVAL", first: string): Promise<unknown> =>
      buffers ? client.callBuffer(command, [first, ...tail]) : client.call(command, [first, ...tail]);
    try {
      return await call("EVALSHA", script.sha);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await call("EVAL", script.source);
    }
  }
}
