// PostgreSQL over TLS, as managed providers (RDS, Cloud SQL, Azure, Supabase, Neon) require or
// offer it: a private server (postgres-server.ts) with ssl = on, a certificate signed by a CA of
// the test's own, and a pg_hba.conf that refuses TCP connections without TLS. Each sslmode a user
// writes is run end to end (migrations at open, a job enqueued by one Offload instance started by
// another's worker, woken by the LISTEN session), and each way of getting TLS wrong must fail at
// once with a typed error that says why (docs/postgres.md, *TLS*).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { BackendOpenError, BackendUnavailableError } from "../../src/core/errors.ts";
import { Offload } from "../../src/index.ts";
import { nextEvent } from "../../src/testing/index.ts";
import { type PrivateServer, makeCertificates, startPrivateServer } from "./postgres-server.ts";

let server: PrivateServer;
/** A server without TLS (ssl = off, as the shared one), for a client that asks for it. */
let plain: PrivateServer;
let ca = "";
/** Another CA's certificate: one the server's certificate was not signed by. */
let otherCa = "";
let otherDir = "";
let admin: pg.Client;
let schemas = 0;

before(async () => {
  server = await startPrivateServer({ tls: { only: true } });
  plain = await startPrivateServer();
  ca = server.ca ?? "";
  otherDir = mkdtempSync(join(tmpdir(), "offload-other-ca-"));
  otherCa = makeCertificates(otherDir, "a CA the server does not use").ca;
  admin = new pg.Client({ connectionString: `${server.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}` });
  await admin.connect();
});

after(async () => {
  await admin.end();
  server.stop();
  plain.stop();
  rmSync(otherDir, { recursive: true, force: true });
});

/** `server`'s URL with `query`, in a schema of its own. */
function urlWith(query: string, base = server.url): string {
  return `${base}?${query}&schema=tls_${++schemas}`;
}

/** Offload's sessions on the server: how many are without TLS, and how many LISTEN. */
async function offloadSessions(): Promise<{ plain: number; listening: number }> {
  const { rows } = await admin.query<{ plain: number; listening: number }>(
    `SELECT count(*) FILTER (WHERE NOT s.ssl)::int AS plain,
            count(*) FILTER (WHERE a.query LIKE 'LISTEN %')::int AS listening
       FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'offload'`,
  );
  return rows[0] ?? { plain: 0, listening: 0 };
}

/**
 * Two Offload instances on `url` (migrating at open): a worker on one, and a job enqueued on the
 * other must start through the LISTEN session. The backends' safety poll is a minute (?poll=), so
 * only a notification can start it within the wait. Every session of theirs must be over TLS.
 */
async function runsAcrossInstances(url: string): Promise<void> {
  const workers = new Offload({ backend: `${url}&poll=60000` });
  const app = new Offload({ backend: `${url}&poll=60000` });
  const errors: unknown[] = [];
  try {
    workers.task({ name: "t", run: (n: number) => n * 2 });
    const task = app.task({ name: "t", run: (n: number) => n * 2 });
    const worker = workers.worker({ poll: "60s" });
    worker.on("error", (error) => errors.push(error));
    await worker.start();
    const backend = await workers.backend();
    assert.ok(backend instanceof PostgresBackend);
    await backend.listening();
    const started = nextEvent(worker, "started", () => true, 5_000);
    const job = await task.enqueue(21);
    assert.equal((await started).job.id, job.id);
    assert.equal(await job.result({ timeout: "5s" }), 42);
    // The app's instance LISTENs too (job.result() waits on change signals).
    const appBackend = await app.backend();
    assert.ok(appBackend instanceof PostgresBackend);
    await appBackend.listening();
    const sessions = await offloadSessions();
    assert.equal(sessions.plain, 0, "every session of Offload's is over TLS");
    assert.equal(sessions.listening, 2, `each instance's LISTEN session: ${JSON.stringify(sessions)}`);
    assert.deepEqual(errors, []);
    await worker.stop();
  } finally {
    await workers.close();
    await app.close();
  }
}

/** Opening `url` (migrations at open) fails with a BackendOpenError whose message matches `reason`. */
async function refusedAtOpen(url: string, reason: RegExp): Promise<void> {
  const offload = new Offload({ backend: url });
  try {
    await assert.rejects(offload.backend(), (error: unknown) => error instanceof BackendOpenError && reason.test(error.message));
  } finally {
    await offload.close();
  }
}

/**
 * With migrations off the backend opens without connecting, and the first enqueue meets the
 * refusal: a BackendUnavailableError naming it, at once (no resends, as for a server that is down).
 * Returns how long it took, ms.
 */
async function refusedOnEnqueue(url: string, reason: RegExp): Promise<number> {
  const offload = new Offload({ backend: `${url}&migrate=false` });
  try {
    const task = offload.task({ name: "t", run: () => 1 });
    const start = performance.now();
    await assert.rejects(task.enqueue({}), (error: unknown) => error instanceof BackendUnavailableError && reason.test(error.message));
    return performance.now() - start;
  } finally {
    await offload.close();
  }
}

const untrusted = /unable to verify the first certificate/;

describe("postgres: TLS", () => {
  it("sslmode=verify-full with sslrootcert= runs jobs across instances, every session (LISTEN too) over TLS", async () => {
    await runsAcrossInstances(urlWith(`sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`));
  });

  it("sslmode=verify-ca with sslrootcert= (pg 8: verify-full) runs jobs, also on localhost, which the certificate names", async () => {
    await runsAcrossInstances(urlWith(`sslmode=verify-ca&sslrootcert=${encodeURIComponent(ca)}`, server.url.replace("127.0.0.1", "localhost")));
  });

  it("sslmode=no-verify, and libpq's require (uselibpqcompat=true), encrypt without checking the certificate", async () => {
    await runsAcrossInstances(urlWith("sslmode=no-verify"));
    await runsAcrossInstances(urlWith("uselibpqcompat=true&sslmode=require"));
  });

  it("sslmode=require without a CA is refused at open, as pg 8 verifies the certificate for it", async () => {
    await refusedAtOpen(urlWith("sslmode=require"), untrusted);
  });

  it("?listenUrl= with TLS parameters of its own LISTENs over TLS", async () => {
    const tls = `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;
    await runsAcrossInstances(urlWith(`${tls}&listenUrl=${encodeURIComponent(`${server.url}?${tls}`)}`));
  });

  it("?listenUrl= without TLS parameters takes the URL's: its LISTEN session is not refused by a TLS-only server", { timeout: 20_000 }, async () => {
    // It connected without TLS: refused at every attempt, reported nowhere (no onConnectionError
    // through a URL), and the job waited for the safety poll (a minute here, 5 s by default).
    await runsAcrossInstances(urlWith(`sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}&listenUrl=${encodeURIComponent(server.url)}`));
  });

  it("pg: { ssl } beside a URL with sslmode= is used for the pool and the LISTEN session, not dropped by pg", async () => {
    const schema = `tls_${++schemas}`;
    const url = `${server.url}?sslmode=verify-full&schema=${schema}&listenUrl=${encodeURIComponent(`${server.url}?sslmode=verify-full`)}`;
    // pg's URL parser replaced the `ssl` object with the URL's: no CA, so the certificate failed.
    const backend = await PostgresBackend.open({ url, pg: { ssl: { ca: readFileSync(ca, "utf8") } } });
    try {
      backend.watch(() => {});
      await backend.listening();
      assert.deepEqual(await offloadSessions().then((s) => [s.plain, s.listening]), [0, 1]);
    } finally {
      await backend.close();
    }
  });

  it("a certificate signed by a CA the client does not trust: BackendOpenError at open, BackendUnavailableError at once on a call", async () => {
    const url = urlWith(`sslmode=verify-full&sslrootcert=${encodeURIComponent(otherCa)}`);
    await refusedAtOpen(url, untrusted);
    // Node's error had a code of its own (no SQLSTATE), and reached the app as it was, untyped.
    assert.ok(await refusedOnEnqueue(url, untrusted) < 2_000);
  });

  it("sslmode=disable against a server that takes TLS connections only: refused at open and at once on a call, saying why", async () => {
    const reason = /pg_hba\.conf rejects connection .* no encryption/;
    await refusedAtOpen(urlWith("sslmode=disable"), reason);
    assert.ok(await refusedOnEnqueue(urlWith("sslmode=disable"), reason) < 2_000);
  });

  it("TLS asked of a server without it fails a call at once, not after seconds of resends", async () => {
    const reason = /The server does not support SSL connections/;
    await refusedAtOpen(urlWith("sslmode=no-verify", plain.url), reason);
    // pg's error has no code, and was read as "no verdict": the enqueue was sent again for 8.8 s.
    const ms = await refusedOnEnqueue(urlWith("sslmode=no-verify", plain.url), reason);
    assert.ok(ms < 2_000, `failed after ${Math.round(ms)} ms`);
  });

  it("a worker whose server's certificate is not trusted reports the reason, at each attempt", async () => {
    const offload = new Offload({ backend: `${urlWith(`sslmode=verify-full&sslrootcert=${encodeURIComponent(otherCa)}`)}&migrate=false` });
    const worker = offload.worker({});
    // Kept listening until the worker stops: without a listener it warns on the process instead.
    const reported = new Promise<unknown>((resolve) => worker.on("error", resolve));
    try {
      await worker.start();
      const error = await reported;
      assert.ok(error instanceof Error && untrusted.test(error.message), String(error));
    } finally {
      await worker.stop();
      await offload.close();
    }
  });
});
