// PostgreSQL benchmark: Offload, graphile-worker (defaults, and with the batching settings of its
// performance docs) and pg-boss (LISTEN/NOTIFY on) in one run, against the same server, with the
// same N and concurrency. Each system gets a fresh schema, dropped afterwards.
//   npm run bench -- --backend postgres [--n 20000] [--rounds 3] [--url postgres://…] [--only offload,pg-boss]
import pg from "pg";
import { measureOffload } from "./offload-suite.ts";
import { type Peer, measurePeer } from "./postgres-peers.ts";
import { interleavedRounds, option, printRounds } from "./measure.ts";

const SYSTEMS = ["offload", "graphile-worker", "graphile-worker (tuned)", "pg-boss"] as const;
type System = (typeof SYSTEMS)[number];

const PEERS: Record<Exclude<System, "offload">, Peer> = {
  "graphile-worker": "graphile",
  "graphile-worker (tuned)": "graphile-tuned",
  "pg-boss": "pg-boss",
};

async function withSchema<T>(url: string, schema: string, work: () => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    return await work();
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

export async function main(args: string[]): Promise<void> {
  const n = Number(option(args, "n", "20000"));
  const url = option(args, "url", process.env["OFFLOAD_BENCH_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test");
  const only = option(args, "only", "").split(",").filter((s) => s !== "");
  const systems = SYSTEMS.filter((s) => only.length === 0 || only.some((o) => s.startsWith(o)));
  const rounds = Number(option(args, "rounds", "1"));
  console.log(`PostgreSQL benchmark: N = ${n}, concurrency 1 and 50, ${rounds} round(s), node ${process.version}, ${new URL(url).host}`);
  const all = await interleavedRounds(systems, rounds, (system) => {
    const schema = `bench_${system.replace(/[^a-z]+/g, "_")}`;
    return withSchema(url, schema, () =>
      system === "offload" ? measureOffload(`${url}${url.includes("?") ? "&" : "?"}schema=${schema}`, n) : measurePeer(PEERS[system], url, schema, n),
    );
  });
  printRounds("Offload on PostgreSQL vs graphile-worker and pg-boss (same server, same run)", systems, all);
}
