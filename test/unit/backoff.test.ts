// Retry options are checked when a task is defined: a typo must not change the backoff silently.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Offload } from "../../src/client/offload.ts";
import { backoffDelay, retryPolicy } from "../../src/core/backoff.ts";
import { ConfigError } from "../../src/core/errors.ts";

describe("retry options from plain JavaScript", () => {
  it("an unknown backoff kind is a ConfigError, not exponential backoff", () => {
    assert.throws(() => retryPolicy({ backoff: "linear" as never }), (e: unknown) => e instanceof ConfigError && /retry\.backoff/.test(e.message));
    const offload = new Offload({ backend: "sqlite::memory:" });
    assert.throws(() => offload.task({ name: "t", retry: { backoff: "Fixed" as never }, run: () => 1 }), ConfigError);
  });

  it("a jitter that is not a boolean is a ConfigError", () => {
    assert.throws(() => retryPolicy({ jitter: "no" as never }), (e: unknown) => e instanceof ConfigError && /retry\.jitter/.test(e.message));
  });

  it("valid options still give the same delays", () => {
    const fixed = retryPolicy({ backoff: "fixed", base: "2s", jitter: false });
    assert.equal(backoffDelay(fixed, 4), 2_000);
    assert.equal(retryPolicy({ jitter: false }).jitter, false);
  });
});
