// A Redis Cluster of redis-server processes a test file starts itself (through its own
// RedisProcesses: free loopback ports, a temp dir, stopped by the file's after hook), and the
// moves a test makes on it by hand: a slot migration that can be held half way, a master killed.
import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { type RedisProcesses, freePort, run, until } from "./redis-processes.ts";

export interface ClusterNode {
  readonly port: number;
  readonly child: ChildProcess;
  /** The node's cluster id: CLUSTER SETSLOT names nodes by it. */
  readonly id: string;
}

export interface ClusterShape {
  readonly masters: number;
  /** Replicas of each master. Default 0. */
  readonly replicas?: number;
  /**
   * How long a node may be unreachable before the others count it as failed and promote one of
   * its replicas. Default 5000 (redis-cli's --cluster create needs at least three masters).
   */
  readonly nodeTimeoutMs?: number;
}

/** One CLUSTER SLOTS row: first slot, last slot, then the master and replicas as [host, port, id]. */
type SlotRange = [number, number, ...Array<[string, number, string]>];

export class TestCluster {
  readonly nodes: readonly ClusterNode[];
  readonly #admins = new Map<number, Redis>();

  private constructor(nodes: readonly ClusterNode[]) {
    this.nodes = nodes;
  }

  /** Starts the nodes in `servers`, lets redis-cli split the slots, and waits until every node serves them. */
  static async start(servers: RedisProcesses, shape: ClusterShape): Promise<TestCluster> {
    const replicas = shape.replicas ?? 0;
    const started: Array<{ port: number; child: ChildProcess }> = [];
    for (let i = 0; i < shape.masters * (1 + replicas); i++) {
      const port = await freePort();
      const child = await servers.start(port, [
        "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`,
        "--cluster-node-timeout", String(shape.nodeTimeoutMs ?? 5_000),
      ]);
      started.push({ port, child });
    }
    await run("redis-cli", ["--cluster", "create", ...started.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", String(replicas), "--cluster-yes"]);
    const nodes: ClusterNode[] = [];
    for (const { port, child } of started) {
      await until(async () => (await cli(port, "cluster", "info")).includes("cluster_state:ok"), `cluster_state:ok on ${port}`, 100);
      // A replica that has not finished its first sync would lose the data of a failover.
      await until(async () => /role:master|master_link_status:up/.test(await cli(port, "info", "replication")), `replication link of ${port}`, 100);
      nodes.push({ port, child, id: await cli(port, "cluster", "myid") });
    }
    return new TestCluster(nodes);
  }

  /** The Offload backend URL for this cluster, every node a seed. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`;
  }

  /** Nodes whose process has not ended. */
  alive(): ClusterNode[] {
    return this.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  }

  node(port: number): ClusterNode {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no cluster node on port ${port}`);
    return node;
  }

  /** A plain connection to one node, for admin commands (closed by close()). */
  admin(port: number): Redis {
    let admin = this.#admins.get(port);
    if (!admin) {
      // One try, no reconnects: a node the test has killed must make the call fail, not wait.
      admin = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 1, retryStrategy: () => null });
      admin.on("error", () => {});
      this.#admins.set(port, admin);
    }
    return admin;
  }

  /** The slot every key of an Offload prefix lives in (they all share its {hash tag}). */
  async slotOf(prefix: string): Promise<number> {
    return Number(await this.#anyAlive().call("CLUSTER", "KEYSLOT", `{${prefix}}:queues`));
  }

  /** The port of the master serving `slot`, in the view of node `askPort` (default: the first live node). */
  async ownerOf(slot: number, askPort?: number): Promise<number> {
    const admin = askPort === undefined ? this.#anyAlive() : this.admin(askPort);
    const ranges = (await admin.call("CLUSTER", "SLOTS")) as SlotRange[];
    for (const [first, last, master] of ranges) {
      if (slot >= first && slot <= last && master) return Number(master[1]);
    }
    throw new Error(`no node serves slot ${slot}`);
  }

  /** The ports of the live masters. */
  async masters(): Promise<number[]> {
    const ports: number[] = [];
    for (const node of this.alive()) {
      const [role] = (await this.admin(node.port).call("ROLE")) as [string, ...unknown[]];
      if (role === "master") ports.push(node.port);
    }
    return ports;
  }

  /** The port of a replica of master `port`. */
  async replicaOf(port: number): Promise<number> {
    for (const node of this.alive()) {
      const replication = await this.admin(node.port).info("replication");
      if (/^master_port:(\d+)/m.exec(replication)?.[1] === String(port)) return node.port;
    }
    throw new Error(`master ${port} has no replica`);
  }

  /**
   * First step of moving `slot` from master `from` to master `to`, as redis-cli --cluster reshard
   * does it: IMPORTING on the target first, then MIGRATING on the source. From here until
   * endMigration(), keys of the slot may be on either node.
   */
  async beginMigration(slot: number, from: number, to: number): Promise<void> {
    await this.admin(to).call("CLUSTER", "SETSLOT", String(slot), "IMPORTING", this.node(from).id);
    await this.admin(from).call("CLUSTER", "SETSLOT", String(slot), "MIGRATING", this.node(to).id);
  }

  /** The keys of `slot` still on node `port`. */
  async keysInSlot(slot: number, port: number): Promise<string[]> {
    return (await this.admin(port).call("CLUSTER", "GETKEYSINSLOT", String(slot), "1000000")) as string[];
  }

  /**
   * Moves keys of `slot` from `from` to `to` in one MIGRATE: the first `count` keys still on
   * `from`, or only those `which` accepts. Returns how many moved (0: none left to move).
   */
  async migrateKeys(slot: number, from: number, to: number, count: number, which: (key: string) => boolean = () => true): Promise<number> {
    const keys = (await this.keysInSlot(slot, from)).filter(which).slice(0, count);
    if (keys.length > 0) await this.admin(from).call("MIGRATE", "127.0.0.1", String(to), "", "0", "5000", "KEYS", ...keys);
    return keys.length;
  }

  /** Moves every key of `slot` still on `from`, then endMigration(). */
  async finishMigration(slot: number, from: number, to: number): Promise<void> {
    while ((await this.migrateKeys(slot, from, to, 100)) > 0);
    await this.endMigration(slot, from, to);
  }

  /**
   * Last step: `slot` belongs to `to`. Target and source are told first (as redis-cli does), then
   * the other masters, so no node sends clients back to the old owner.
   */
  async endMigration(slot: number, from: number, to: number): Promise<void> {
    const assign = (port: number): Promise<unknown> => this.admin(port).call("CLUSTER", "SETSLOT", String(slot), "NODE", this.node(to).id);
    await assign(to);
    await assign(from);
    for (const port of await this.masters()) if (port !== to && port !== from) await assign(port);
  }

  /** Closes the admin connections; the nodes are stopped with the RedisProcesses they run in. */
  close(): void {
    for (const admin of this.#admins.values()) admin.disconnect();
    this.#admins.clear();
  }

  #anyAlive(): Redis {
    const [node] = this.alive();
    if (!node) throw new Error("no cluster node is running");
    return this.admin(node.port);
  }
}

async function cli(port: number, ...args: string[]): Promise<string> {
  return (await run("redis-cli", ["-p", String(port), ...args])).stdout.trim();
}
