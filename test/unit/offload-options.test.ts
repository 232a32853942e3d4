// Offload's own options are checked when the instance is made.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Offload } from "../../src/client/offload.ts";
import { ConfigError } from "../../src/core/errors.ts";

describe("Offload options are checked when the instance is made", () => {
  it("a size limit that is not a positive whole number of bytes is a ConfigError", () => {
    assert.throws(() => new Offload({ backend: "sqlite::memory:", maxPayloadBytes: Number.NaN }), (e: unknown) => e instanceof ConfigError && /maxPayloadBytes/.test(e.message));
    assert.throws(() => new Offload({ backend: "sqlite::memory:", maxPayloadBytes: -1 }), ConfigError);
    assert.throws(() => new Offload({ backend: "sqlite::memory:", maxResultBytes: 0 }), (e: unknown) => e instanceof ConfigError && /maxResultBytes/.test(e.message));
    assert.throws(() => new Offload({ backend: "sqlite::memory:", maxResultBytes: "1mb" as never }), ConfigError);
    assert.equal(new Offload({ backend: "sqlite::memory:", maxPayloadBytes: 10 }).maxPayloadBytes, 10);
  });

  it("an unknown mode is a ConfigError, not queue mode", () => {
    assert.throws(() => new Offload({ mode: "eager" as never }), (e: unknown) => e instanceof ConfigError && /mode/.test(e.message));
    assert.equal(new Offload({ mode: "inline" }).mode, "inline");
  });
});
