// What the backend asks of the server it connects to, checked on each (re)connection of every
// server it writes to (INFO; a managed server that refuses INFO is taken on trust):
// - Redis 6.2 or later. Older servers lack commands the scripts use (XTRIM MINID, ZMSCORE, XRANGE
//   with an exclusive start) and would fail them half way through a script, its first writes
//   kept: calls are refused instead, with a ConfigError that says so, until a newer server answers.
// - A maxmemory-policy that cannot evict Offload's keys. An allkeys-* policy (a cache's usual
//   setting, and the default of some managed offerings) may evict a job's hash or an index under
//   memory pressure, and the job is gone without a trace: warned about once, as BullMQ does.
//   Offload sets no TTL on its keys, so volatile-* never picks them: a full server then fails
//   writes loudly with OOM, which is safe.
import { Cluster, type Redis } from "ioredis";
import { ConfigError } from "../../core/errors.ts";

const MIN_MAJOR = 6;
const MIN_MINOR = 2;

/** The error for an INFO reply of a server too old for the scripts, if it is. */
export function versionProblem(info: string): ConfigError | undefined {
  const version = /^redis_version:(\d+)\.(\d+)\S*/m.exec(info);
  if (!version) return undefined;
  const major = Number(version[1]);
  const minor = Number(version[2]);
  if (major > MIN_MAJOR || (major === MIN_MAJOR && minor >= MIN_MINOR)) return undefined;
  return new ConfigError(`Offload needs Redis ${MIN_MAJOR}.${MIN_MINOR} or later (XTRIM MINID, ZMSCORE); this server runs ${version[0].slice("redis_version:".length)}`);
}

/** The warning for an INFO reply whose policy may evict Offload's keys, if it does. */
export function evictionHazard(info: string): string | undefined {
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined || !policy.startsWith("allkeys-")) return undefined;
  return `redis maxmemory-policy is ${policy}: under memory pressure the server may evict any key, and jobs with them, silently; set it to noeviction (docs/redis.md)`;
}

export interface ServerCheckActions {
  /** A hazard to tell the user about (once per backend). */
  readonly warn: (message: string) => void;
  /** The latest check's verdict: an error while a server is too old, undefined once none is. */
  readonly refuse: (error: ConfigError | undefined) => void;
}

/**
 * Checks on each connection (and, on a Cluster, whenever a node joins: a replica promoted to
 * master). Calls made before the first answer are not held: the commands an old server lacks
 * come late in a script's life (a feed past its cap, a lost reply's recovery), so the refusal
 * applies from that answer on.
 */
export function watchServer(client: Redis | Cluster, actions: ServerCheckActions): void {
  let warned = false;
  const check = (): void => {
    const servers: Array<Redis | Cluster> = client instanceof Cluster ? client.nodes("master") : [client];
    // A failed INFO (refused by a managed server, or the connection gone again) says nothing:
    // it neither lifts a refusal nor makes one.
    void Promise.all(servers.map((server) => server.info().catch(() => undefined))).then((replies) => {
      const infos = replies.filter((info) => info !== undefined);
      if (infos.length === 0) return;
      const problem = infos.map(versionProblem).find((found) => found !== undefined);
      if (problem !== undefined || infos.length === servers.length) actions.refuse(problem);
      const hazard = infos.map(evictionHazard).find((warning) => warning !== undefined);
      if (hazard !== undefined && !warned) {
        warned = true;
        actions.warn(hazard);
      }
    });
  };
  client.on("ready", check);
  if (client instanceof Cluster) client.on("+node", check);
  if (client.status === "ready") check();
}
