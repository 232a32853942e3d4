// The Redis claim reply packs each job's fields into one string (claim.lua): separated by byte
// 255, an absent field written as byte 254. Read back exactly, and refused when the count is off.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CLAIM_FIELDS, claimedRecord } from "../../src/backend/redis/records.ts";

const claim = { token: "tok.1", leaseUntil: 2_000, worker: "w1", now: 1_000 };

function packed(values: ReadonlyArray<string | undefined>): Buffer {
  const parts = values.map((v) => (v === undefined ? Buffer.from([0xfe]) : Buffer.from(v, "utf8")));
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from([0xff]), p])));
}

function fields(overrides: Partial<Record<(typeof CLAIM_FIELDS)[number], string | undefined>>): Array<string | undefined> {
  const base: Record<string, string | undefined> = {
    attempt: "0", id: "j1", task: "t", queue: "q", payload: '{"a":"ÿþ 🎉"}', priority: "0", run_at: "5",
    max_attempts: "3", key: undefined, owner: "", created_at: "4", errors: undefined, progress: undefined,
    progress_message: undefined,
  };
  const merged = { ...base, ...overrides };
  return CLAIM_FIELDS.map((f) => merged[f]);
}

describe("redis claim replies", () => {
  it("unpack every field: text as sent, an empty string as empty, an absent field as absent", () => {
    const job = claimedRecord(packed(fields({ key: "k\tx\n" })), claim);
    assert.deepEqual(job.payload, { a: "ÿþ 🎉" });
    assert.equal(job.key, "k\tx\n");
    assert.equal(job.owner, "");
    assert.equal(job.progress, undefined);
    assert.equal(job.attempt, 1, "the claim's own change: attempt + 1");
    assert.equal(job.state, "active");
    assert.equal(job.leaseUntil, 2_000);
  });

  it("a reply with too few or too many fields is refused, not half read", () => {
    const all = fields({});
    assert.throws(() => claimedRecord(packed(all.slice(0, -1)), claim), /malformed reply \(too few fields\)/);
    assert.throws(() => claimedRecord(packed(all.slice(0, 3)), claim), /too few fields/);
    assert.throws(() => claimedRecord(packed([...all, "extra"]), claim), /too many fields/);
    assert.throws(() => claimedRecord("not a buffer", claim), /malformed reply/);
  });
});
