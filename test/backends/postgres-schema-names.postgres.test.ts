// Schema names may be 1-63 characters, but a NOTIFY channel name must be shorter than 64 bytes:
// `offload:<schema>` for a long schema made every writing statement fail ("channel name too long")
// and the LISTEN (an identifier, truncated) listen elsewhere.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { channelName } from "../../src/backend/postgres/queries.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { claimOne, enqueueOne, LEASE, nextChange, T0 } from "../conformance/fixtures.ts";
import { openIsolated } from "./postgres-helpers.ts";

/** A schema name of exactly `length` characters, unique per run. */
function schemaOfLength(length: number): string {
  const unique = `l${randomBytes(6).toString("hex")}`;
  return `${unique}${"_".repeat(length - unique.length)}`;
}

describe("postgres: long schema names", () => {
  it("a 63-character schema enqueues, claims and completes, and another process's write wakes its watchers", async () => {
    const schema = schemaOfLength(63);
    const a = await openIsolated({ schema, pollMs: 600_000 }); // woken by the NOTIFY, not the safety poll
    const b = await openIsolated({ schema, migrate: false });
    try {
      await a.listening();
      const woken = nextChange(a);
      const id = await enqueueOne(b);
      await woken;
      const claimed = await claimOne(a);
      assert.deepEqual(await a.complete([{ id, token: claimed.token, resultJson: "1" }], T0 + LEASE / 2), ["OK"]);
      assert.equal((await a.getJob(id))?.state, "succeeded");
    } finally {
      await b.close();
      await a.close();
    }
  });

  it("channel names stay under 64 bytes and differ for schemas that share a long prefix", () => {
    const prefix = "s".repeat(60);
    const names = [channelName(`${prefix}abc`), channelName(`${prefix}abd`), channelName("offload")];
    for (const name of names) assert.ok(Buffer.byteLength(name) < 64, name);
    assert.equal(new Set(names).size, names.length);
    assert.equal(channelName("offload"), "offload:offload"); // short names keep the channel older processes use
  });

  it("a schema name that is not a plain identifier is a ConfigError, before a connection is made", async () => {
    for (const bad of ["has space", 'quo"te', "9lives", schemaOfLength(64), ""]) {
      await assert.rejects(PostgresBackend.open({ url: "postgres://nobody@127.0.0.1:1/none", schema: bad }),
        (error: unknown) => error instanceof ConfigError && /schema name/.test(error.message), bad);
    }
  });
});
