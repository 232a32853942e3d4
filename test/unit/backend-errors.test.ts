// Which server errors reach the app as BackendUnavailableError (src/backend/backend-errors.ts and
// the adapters' refusedForNow), and which pass through as they are.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DrizzleQueryError } from "drizzle-orm";
import { resendable as postgresResendable, refusedForNow as postgresRefusedForNow, unavailable as postgresUnavailable } from "../../src/backend/postgres/connection.ts";
import { refusedForNow as redisRefusedForNow, resendable as redisResendable } from "../../src/backend/redis/connection.ts";
import { forCaller } from "../../src/backend/backend-errors.ts";
import { openBackend } from "../../src/backend/open.ts";
import { BackendUnavailableError, JobNotFoundError, Offload } from "../../src/index.ts";
import { FakeClock } from "../../src/testing/index.ts";
import { replacing } from "../conformance/fixtures.ts";

/** A backend whose unavailable() says yes to errors whose message says "down". */
const server = { name: "redis", unavailable: (error: unknown) => error instanceof Error && error.message.includes("down") };

function replyError(message: string): Error {
  const error = new Error(message);
  error.name = "ReplyError";
  return error;
}

function sqlError(code: string): Error {
  return Object.assign(new Error(`sqlstate ${code}`), { code });
}

describe("errors the app's calls throw", () => {
  it("a server error the adapter calls unavailable becomes a BackendUnavailableError, the driver's error its cause", () => {
    const down = new Error("server down");
    const error = forCaller(server, down);
    assert.ok(error instanceof BackendUnavailableError);
    assert.deepEqual([error.code, error.backend, error.cause, error.message], ["BACKEND_UNAVAILABLE", "redis", down, "the redis backend is unavailable: server down"]);
  });

  it("any other error passes through as it is: the server's other answers, Offload's own errors, and every error of a backend without a server", () => {
    const refusal = new Error("ERR wrong number of arguments");
    assert.equal(forCaller(server, refusal), refusal);
    const own = new JobNotFoundError("x");
    assert.equal(forCaller({ ...server, unavailable: () => true }, own), own);
    const down = new Error("down");
    assert.equal(forCaller({ name: "sqlite" }, down), down);
  });

  it("Redis: OOM and MISCONF are refusals that can pass, whether Redis 7 or a Redis 6 script error reports them", () => {
    for (const message of [
      "OOM command not allowed when used memory > 'maxmemory'. script: d7fc, on @user_script:72.",
      "ERR Error running script (call to f_d7fc): @user_script:72: @user_script: 72: -OOM command not allowed when used memory > 'maxmemory'. ",
      "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
    ]) assert.equal(redisRefusedForNow(replyError(message)), true, message);
    for (const message of ["ERR syntax error", "NOSCRIPT No matching script.", "WRONGTYPE Operation against a key holding the wrong kind of value", "ERR value is not an integer or out of range OOM"]) {
      assert.equal(redisRefusedForNow(replyError(message)), false, message);
    }
    assert.equal(redisRefusedForNow(new Error("OOM command not allowed")), false, "only the server's replies");
  });

  it("Redis: BUSY (another client's script past busy-reply-threshold) says the call did not run: the adapter sends it again", () => {
    const busy = replyError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.");
    assert.equal(redisResendable(busy), true);
    assert.equal(redisRefusedForNow(busy), false);
    assert.equal(redisResendable(replyError("BUSYKEY Target key name already exists.")), false);
  });

  it("PostgreSQL: class 53 (disk, memory, connections), a statement timeout and a lock timeout are refusals that can pass", () => {
    for (const code of ["53000", "53100", "53200", "53300", "53400", "57014", "55P03"]) assert.equal(postgresRefusedForNow(sqlError(code)), true, code);
    for (const code of ["23505", "42P01", "42501", "22P02", "25P02"]) assert.equal(postgresRefusedForNow(sqlError(code)), false, code);
    assert.equal(postgresRefusedForNow(new Error("Connection terminated")), false, "no SQLSTATE: the adapter's resendable() judges those");
  });

  it("PostgreSQL: node's socket errors are sent again, its ERR_* codes (a refused TLS certificate) are not", () => {
    for (const code of ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EAI_AGAIN"]) assert.equal(postgresResendable(sqlError(code)), true, code);
    for (const code of ["ERR_TLS_CERT_ALTNAME_INVALID", "ERR_INVALID_ARG_TYPE"]) assert.equal(postgresResendable(sqlError(code)), false, code);
  });

  it("PostgreSQL: an ORM's error around pg's (a transactional enqueue through Drizzle) is judged by pg's SQLSTATE, not read as no answer", () => {
    const wrapped = (cause: Error): Error => new DrizzleQueryError("INSERT INTO offload.jobs …", [], cause);
    for (const code of ["25P02", "42P01", "42501", "23505"]) assert.equal(postgresUnavailable(wrapped(sqlError(code))), false, code);
    for (const code of ["08006", "57P01", "53300", "57014"]) assert.equal(postgresUnavailable(wrapped(sqlError(code))), true, code);
    assert.equal(postgresUnavailable(wrapped(new Error("Connection terminated unexpectedly"))), true, "pg's own error, without a SQLSTATE");
    assert.equal(postgresUnavailable(wrapped(new TypeError("x is not a function"))), false, "a fault in code");
    assert.equal(postgresUnavailable(new Error("Connection terminated unexpectedly")), true);
    assert.equal(postgresUnavailable(sqlError("25P02")), false);
    // A connection refused as configured (postgres-tls.postgres.test.ts): not resent, but the app's
    // calls get a BackendUnavailableError naming the reason.
    for (const code of ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_HAS_EXPIRED", "ERR_TLS_CERT_ALTNAME_INVALID", "28000", "28P01"]) {
      assert.equal(postgresResendable(sqlError(code)), false, code);
      assert.equal(postgresUnavailable(wrapped(sqlError(code))), true, code);
    }
    const withoutTls = new Error("The server does not support SSL connections");
    assert.equal(postgresResendable(withoutTls), false, "pg's error without a code, for a server without TLS");
    assert.equal(postgresUnavailable(withoutTls), true);
    assert.equal(postgresUnavailable(sqlError("ERR_INVALID_ARG_TYPE")), false, "not about the connection");
  });

  it("PostgreSQL: Prisma 7's errors are judged by the verdict in their meta, not by Prisma's own code", () => {
    // The shapes Prisma 7 with @prisma/adapter-pg throws (seen against the real server; the test
    // of postgres-orm.postgres.test.ts runs the timeout and read-only cases through Prisma itself).
    const prisma = (code: string, cause: Record<string, unknown>): Error =>
      Object.assign(new Error(`prisma ${code}`), { code, meta: { driverAdapterError: { name: "DriverAdapterError", cause } } });
    assert.equal(postgresUnavailable(prisma("P1001", { kind: "DatabaseNotReachable", host: "127.0.0.1", port: 1 })), true, "unreachable");
    assert.equal(postgresUnavailable(prisma("P2010", { kind: "ConnectionClosed" })), true, "connection closed");
    assert.equal(postgresUnavailable(prisma("P2010", { kind: "TooManyConnections" })), true, "out of connections");
    assert.equal(postgresUnavailable(prisma("P2010", { kind: "postgres", code: "57P01", originalCode: "57P01" })), true, "terminated");
    assert.equal(postgresUnavailable(prisma("P2010", { kind: "postgres", code: "55P03", originalCode: "55P03" })), true, "lock timeout");
    assert.equal(postgresUnavailable(prisma("P2010", { kind: "UniqueConstraintViolation", originalCode: "23505" })), false, "a refusal of the call as sent");
    assert.equal(postgresUnavailable(prisma("P2010", { kind: "TableDoesNotExist" })), false, "a kind without a SQLSTATE that is not about the connection");
  });
});

describe("errors a worker reports", () => {
  it("a claim the server could not take is reported as the BackendUnavailableError the app's calls get; other failures as they are", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    const down = new Error("server down");
    const refused = new Error("ERR wrong number of arguments");
    const failures = [down, refused];
    const backend = replacing(real, {
      name: "redis",
      unavailable: server.unavailable,
      claim: (request) => {
        const failure = failures.shift();
        return failure === undefined ? real.claim(request) : Promise.reject(failure);
      },
    });
    const offload = new Offload({ backend, clock });
    try {
      offload.task({ name: "noop", run: () => null });
      const worker = offload.worker({ poll: "60s" });
      const errors: Error[] = [];
      worker.on("error", (error) => errors.push(error));
      await worker.start();
      // The claim loop backs off 100 ms after the first failure, 200 after the second.
      await clock.sleeping(100);
      clock.advance(100);
      await clock.sleeping(200);
      const [first, second] = errors;
      assert.ok(first instanceof BackendUnavailableError, String(first));
      assert.deepEqual([first.backend, first.cause, first.message], ["redis", down, "the redis backend is unavailable: server down"]);
      assert.equal(second, refused, "a refusal of the call as sent is not an outage");
      await worker.stop();
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });
});
