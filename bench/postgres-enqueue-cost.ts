// Where a batched enqueue's time goes on PostgreSQL: Offload's enqueue statement run as it is,
// beside variants of it that store the jobs' first state events differently, on one connection,
// the variants interleaved batch by batch so that a machine whose speed drifts moves them alike.
// For deciding what the event feed costs; `npm run bench -- --backend postgres` is the
// comparison with the peers. Linux only (/proc, for the server backend's CPU).
//   node bench/postgres-enqueue-cost.ts [--batches 60] [--url postgres://postgres@127.0.0.1:5432/test]
// Variants:
//   as-is         the shipped statement: jobs, and one events row per job (a CTE);
//   no-events     the jobs alone: what the event rows cost, and the floor for any other layout;
//   first-event   no events row: each job keeps its first event's id (nextval of the events'
//                 sequence) and whether it was born scheduled, in two columns of its row, found
//                 for the global feed by a partial btree index on that id;
//   first-brin    the same with a BRIN index instead (cheaper to write; reads less predictable);
//   const-data    the events rows, with their JSON written as a constant per state instead of
//                 jsonb_build_object.
// Works in a schema of its own, dropped afterwards.
import { readFileSync } from "node:fs";
import pg from "pg";
import { Offload } from "../src/index.ts";
import { randomToken, uuidv7 } from "../src/core/ids.ts";
import { inSchema } from "../src/backend/postgres/queries.ts";
import { option } from "./measure.ts";

const args = process.argv.slice(2);
const batches = Number(option(args, "batches", "60"));
const server = option(args, "url", "postgres://postgres@127.0.0.1:5432/test");
const schema = `bench_enqueue_${randomToken().slice(0, 6).toLowerCase()}`;
const BATCH = 1_000;

const setup = new Offload({ backend: `${server}?schema=${schema}` });
await setup.backend(); // creates and migrates the schema
await setup.close();

const client = new pg.Client({ connectionString: server });
await client.connect();
try {
  await client.query(inSchema(`
    CREATE TABLE offload.jobs_brin (LIKE offload.jobs INCLUDING ALL);
    ALTER TABLE offload.jobs ADD COLUMN first_event bigint, ADD COLUMN born_scheduled boolean;
    ALTER TABLE offload.jobs_brin ADD COLUMN first_event bigint, ADD COLUMN born_scheduled boolean;
    CREATE INDEX ON offload.jobs (first_event) WHERE first_event IS NOT NULL;
    CREATE INDEX ON offload.jobs_brin USING brin (first_event);`, schema));

  const shipped = inSchema(readFileSync(new URL("../src/backend/postgres/queries/enqueue.sql", import.meta.url), "utf8"), schema);
  const eventsCte = /logged AS \([\s\S]*?RETURNING job_id\n\),/;
  if (!eventsCte.test(shipped)) throw new Error("enqueue.sql no longer has the events CTE this experiment replaces");
  const noEvents = shipped.replace(eventsCte, "logged AS (SELECT id AS job_id FROM inserted),");
  // nextval in the projection over an ordered subquery: ids are taken in job id order, as the
  // events CTE takes them.
  const firstEvent = (table: string): string => noEvents
    .replace(`INSERT INTO "${schema}".jobs (id,`, `INSERT INTO "${schema}".${table} (first_event, born_scheduled, id,`)
    .replace("SELECT i.id, i.task,", `SELECT nextval('"${schema}".events_id_seq'), i.run_at > $9::bigint, i.id, i.task,`)
    .replace(/FROM unnest\(([^)]*)\)\s*AS i\(([^)]*)\)/, "FROM (SELECT * FROM unnest($1) AS u($2) ORDER BY id) i");
  const constData = shipped.replace("jsonb_build_object('state', state, 'attempt', 0)",
    `(CASE state WHEN 'queued' THEN '{"state":"queued","attempt":0}'::jsonb ELSE '{"state":"scheduled","attempt":0}'::jsonb END)`);
  const variants: Record<string, string> = {
    "as-is": shipped, "no-events": noEvents, "first-event": firstEvent("jobs"), "first-brin": firstEvent("jobs_brin"), "const-data": constData,
  };

  const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
  const cpuMs = (): number => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ on Linux
  };
  const wall: Record<string, number> = {};
  const cpu: Record<string, number> = {};
  for (let b = 0; b < batches; b++) {
    for (const [name, text] of Object.entries(variants)) {
      const now = Date.now();
      const ids = Array.from({ length: BATCH }, () => uuidv7(now));
      const values = [ids, ids.map(() => "bench.noop"), ids.map(() => "bench"), ids.map((_, i) => JSON.stringify({ i })),
        ids.map(() => 0), ids.map(() => now), ids.map(() => 3), ids.map(() => null), now, "bench_enqueue_cost"];
      const cpuBefore = cpuMs();
      const start = performance.now();
      await client.query({ name, text, values });
      wall[name] = (wall[name] ?? 0) + performance.now() - start;
      cpu[name] = (cpu[name] ?? 0) + cpuMs() - cpuBefore;
    }
  }
  const perJob = (ms: number | undefined): string => `${(((ms ?? 0) * 1000) / (batches * BATCH)).toFixed(1)} µs`;
  console.log(`${batches} batches of ${BATCH} per variant, interleaved; per job: the statement's wall time (client encoding included), the server backend's CPU`);
  for (const name of Object.keys(variants)) console.log(`  ${name.padEnd(12)} wall ${perJob(wall[name])}   server CPU ${perJob(cpu[name])}`);
} finally {
  await client.query(`DROP SCHEMA "${schema}" CASCADE`);
  await client.end();
}
