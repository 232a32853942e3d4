// Typed errors for values that cannot be stored, and URLs whose passwords never reach a message.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BackendOpenError, NotSerializableError, withoutPassword } from "../../src/core/errors.ts";
import { encodeJson } from "../../src/core/json.ts";
import { Offload } from "../../src/client/offload.ts";

describe("error messages and typed errors", () => {
  it("a password holding an unencoded @ is masked whole, as URL parsers read it", () => {
    const url = "redis://app:p@ss@cache.internal:6379/0";
    // What the WHATWG parser (and so ioredis and pg) takes as the password.
    assert.equal(new URL(url).password, "p%40ss");
    assert.equal(withoutPassword(url), "redis://app:***@cache.internal:6379/0");
    const error = new BackendOpenError("postgres://app:a@b@c@db:5432/x", "refused");
    assert.ok(!/a@b|b@c/.test(error.message), error.message);
    assert.equal(error.url, "postgres://app:***@db:5432/x");
  });

  it("an @ after the host is not taken for the end of a password", () => {
    assert.equal(withoutPassword("redis://cache:6379/0?name=a@b"), "redis://cache:6379/0?name=a@b");
    assert.equal(withoutPassword("postgres://u:pw@db/x?application_name=a@b"), "postgres://u:***@db/x?application_name=a@b");
  });

  it("the password of a PostgreSQL ?listenUrl= is masked too, percent-encoded or not", () => {
    const direct = "postgres://app:s3cret@db.internal:5432/app";
    const pooled = `postgres://app:s3cret@pooler:6543/app?pooler=transaction&listenUrl=${encodeURIComponent(direct)}&schema=jobs`;
    const shown = withoutPassword(pooled);
    assert.ok(!shown.includes("s3cret"), shown);
    assert.equal(decodeURIComponent(new URL(shown).searchParams.get("listenUrl") ?? ""), "postgres://app:***@db.internal:5432/app");
    assert.equal(new URL(shown).searchParams.get("schema"), "jobs");
    assert.ok(!withoutPassword(`postgres://pooler/app?listenUrl=${direct}`).includes("s3cret"));
  });

  it("a value whose toJSON gives undefined is a NotSerializableError, not a TypeError", () => {
    assert.throws(() => encodeJson({ toJSON: () => undefined }, "payload of t"), NotSerializableError);
  });
});

describe("a result that cannot be stored", () => {
  it("a handler result whose toJSON gives undefined fails the job at once, not after every retry", async () => {
    const offload = new Offload({ mode: "inline" });
    let runs = 0;
    const task = offload.task({
      name: "odd-result",
      retry: { attempts: 3 },
      run: () => {
        runs++;
        return { toJSON: (): undefined => undefined };
      },
    });
    const job = await (await task.enqueue(1)).get();
    assert.equal(job.state, "failed");
    assert.equal(runs, 1);
    assert.equal(job.errors.at(-1)?.name, "NotSerializableError");
    await offload.close();
  });
});
