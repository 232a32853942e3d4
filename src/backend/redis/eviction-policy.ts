// Redis evicts keys under memory pressure as its maxmemory-policy says. An allkeys-* policy may
// evict any key: a job's hash, or an index entry's set, and the job is gone without a trace (a
// cache's usual setting, and the default of some managed offerings). Offload sets no TTL on its
// keys, so a volatile-* policy never picks them: writes then fail loudly with OOM, which is safe.
// As BullMQ does, the server is asked on each (re)connection and the hazard is warned about once.
import { Cluster, type Redis } from "ioredis";

/** The warning for an INFO memory reply whose policy may evict Offload's keys, if it does. */
export function evictionHazard(info: string): string | undefined {
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined || !policy.startsWith("allkeys-")) return undefined;
  return `redis maxmemory-policy is ${policy}: under memory pressure the server may evict any key, and jobs with them, silently; set it to noeviction (docs/redis.md)`;
}

/** Checks the policy of every server the client writes to, on each connection; warns once. */
export function watchEvictionPolicy(client: Redis | Cluster, warn: (message: string) => void): void {
  let warned = false;
  const check = (): void => {
    const servers: Array<Redis | Cluster> = client instanceof Cluster ? client.nodes("master") : [client];
    for (const server of servers) {
      // INFO may be renamed or refused on a managed server: then there is nothing to say.
      server.info("memory").then((info) => {
        const hazard = evictionHazard(info);
        if (hazard !== undefined && !warned) {
          warned = true;
          warn(hazard);
        }
      }, () => {});
    }
  };
  client.on("ready", check);
  if (client.status === "ready") check();
}
