// HMAC signatures with an expiry, for download URLs and public job tokens. The signed text is
// "<purpose>\n<subject>\n<expires>", so a signature made for one purpose (say, a download) is
// never accepted for another (a job token), and changing any part of a URL breaks it.
// Time comes from the caller's clock, so expiry is testable on a FakeClock.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { ConfigError } from "../core/errors.ts";
import { describe } from "../core/names.ts";

const MIN_SECRET_BYTES = 16;

export type SignaturePurpose = "artifact" | "job-token";

export class Signer {
  readonly #key: Buffer;
  readonly #clock: Clock;

  constructor(secret: string | Uint8Array, clock: Clock = systemClock) {
    // `secret: process.env.OFFLOAD_HTTP_SECRET!` with the variable unset is the usual first run:
    // Buffer.from(undefined) threw a TypeError that named neither the option nor the variable.
    if (typeof secret !== "string" && !(secret instanceof Uint8Array)) {
      throw new ConfigError(`the signing secret (createJobsHttp's secret) must be a string or bytes of at least ${MIN_SECRET_BYTES} bytes, got ${describe(secret)}: is the variable it comes from (say, OFFLOAD_HTTP_SECRET) set?`);
    }
    const key = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
    if (key.length < MIN_SECRET_BYTES) throw new ConfigError(`the signing secret must be at least ${MIN_SECRET_BYTES} bytes`);
    this.#key = key;
    this.#clock = clock;
  }

  now(): number {
    return this.#clock.now();
  }

  /** A signature (base64url) valid until `expiresAt` (epoch ms). */
  sign(purpose: SignaturePurpose, subject: string, expiresAt: number): string {
    return createHmac("sha256", this.#key).update(`${purpose}\n${subject}\n${expiresAt}`).digest("base64url");
  }

  /** True when `signature` was made by this key for exactly these values and has not expired. */
  verify(purpose: SignaturePurpose, subject: string, expiresAt: number, signature: string): boolean {
    if (!Number.isSafeInteger(expiresAt) || expiresAt <= this.#clock.now()) return false;
    // Compare the text, not decoded bytes: base64url decoding ignores the last character's spare
    // bits, so a decoded comparison would accept a URL someone changed.
    const expected = Buffer.from(this.sign(purpose, subject, expiresAt), "utf8");
    const given = Buffer.from(signature, "utf8");
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
