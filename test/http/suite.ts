// The HTTP suite: every route of offload/http over real HTTP, with the worker in another process.
// The same cases run on every backend that several processes can share:
//
//   defineHttpSuite("sqlite (file)", async () => `sqlite://${freshFile()}`);
//   defineHttpSuite("redis", async () => `redis://127.0.0.1:6379/?prefix=${randomPrefix()}`);
//
// `makeOffloadUrl` must give a fresh, empty backend each time.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Harness, OWNER_HEADER, startHarness } from "./harness.ts";
import { type SseMessage, openSse, readUntil } from "./sse-client.ts";

const isResult = (m: SseMessage): boolean => m.event === "result";

async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

function errorCode(body: Record<string, unknown>): unknown {
  return (body["error"] as Record<string, unknown> | undefined)?.["code"];
}

export function defineHttpSuite(name: string, makeOffloadUrl: () => Promise<string>): void {
  describe(`offload/http: ${name}`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(await makeOffloadUrl());
    });
    after(async () => {
      await h.close();
    });

    it("a route answers 202 with Location and a body to follow the job; the status JSON follows it to the end", async () => {
      const response = await fetch(`${h.origin}/reports`, { method: "POST" });
      assert.equal(response.status, 202);
      const location = response.headers.get("location");
      assert.match(location ?? "", /^\/jobs\/[0-9a-f-]{36}$/);
      const body = (await response.json()) as { id: string; kind: string; links: { events: string }; token: string };
      assert.equal(`/jobs/${body.id}`, location);
      assert.equal(body.kind, "report");
      assert.match(body.links.events, new RegExp(`^/jobs/${body.id}/events\\?token=`));

      const queued = await getJson(`${h.origin}${location}`);
      assert.equal(queued.status, 200);
      assert.equal(queued.body["id"], body.id);
      assert.equal(queued.body["task"], "http-test.steps");
      assert.equal(queued.body["queue"], "default");
      assert.ok(["queued", "active"].includes(String(queued.body["state"])));
      assert.equal(typeof queued.body["createdAt"], "string");
      assert.equal("payload" in queued.body, false, "the payload is not public");

      h.go(body.id, 2);
      await h.offload.job(body.id).result({ timeout: "10s" });
      const done = await getJson(`${h.origin}${location}`);
      assert.equal(done.body["state"], "succeeded");
      assert.equal(done.body["progress"], 1);
      assert.equal(done.body["message"], "step 2");
      assert.equal(done.body["attempt"], 1);
      assert.deepEqual(done.body["result"], { steps: 2 });
      assert.equal(typeof done.body["finishedAt"], "string");
    });

    it("SSE streams state, progress and logs written by a worker in another process, then the result", async () => {
      const job = await h.tasks.steps.enqueue({ steps: 3 });
      const sse = await openSse(`${h.origin}/jobs/${job.id}/events`);
      assert.equal(sse.status, 200);
      assert.match(sse.headers.get("content-type") ?? "", /^text\/event-stream/);
      const first = await readUntil(sse, (m) => m.event === "state" && JSON.parse(m.data).state === "active");
      assert.equal(first[0]?.event, "state");
      // Release one step at a time and see each one arrive live.
      for (let step = 1; step <= 3; step++) {
        h.go(job.id);
        const got = await readUntil(sse, (m) => m.event === "progress");
        const progress = got.at(-1);
        assert.deepEqual({ ...JSON.parse(progress?.data ?? "{}"), at: undefined }, { progress: step / 3, message: `step ${step}`, at: undefined });
      }
      const rest = await readUntil(sse, isResult);
      assert.ok(rest.some((m) => m.event === "log" && JSON.parse(m.data).line === "did step 3"));
      assert.ok(rest.some((m) => m.event === "state" && JSON.parse(m.data).state === "succeeded"));
      const result = JSON.parse(rest.at(-1)?.data ?? "{}") as { state: string; result: unknown };
      assert.equal(result.state, "succeeded");
      assert.deepEqual(result.result, { steps: 3 });
      assert.equal(await sse.next(), undefined, "the stream ends after the result");
      const stored = await h.offload.job(job.id).get();
      assert.match(stored.worker ?? "", new RegExp(`:${h.workerPid}:`), "the job ran in the worker process");
    });

    it("resumes with Last-Event-ID: every feed event exactly once, in order, across a reconnect", async () => {
      const job = await h.tasks.steps.enqueue({ steps: 4 });
      const one = await openSse(`${h.origin}/jobs/${job.id}/events`);
      h.go(job.id);
      const before = await readUntil(one, (m) => m.event === "progress");
      one.close();
      const lastId = before.at(-1)?.id;
      assert.ok(lastId);
      h.go(job.id, 3); // events keep landing while nobody listens
      const two = await openSse(`${h.origin}/jobs/${job.id}/events`, { "last-event-id": lastId });
      const afterward = await readUntil(two, isResult);
      two.close();
      const delivered = [...before, ...afterward].filter((m) => m.id !== undefined);
      const feed = (await h.offload.jobs.events({ jobId: job.id, afterId: 0 })).map((e) => e.id);
      // Progress is a gauge: a run's newest progress event replaces the one before, in the feed too.
      // Those seen live (the first step's, and any caught before the next replaced it) are gone.
      const replaced = delivered.filter((m) => !feed.includes(Number(m.id)));
      assert.ok(replaced.length >= 1 && replaced.every((m) => m.event === "progress"), "only replaced progress events are gone from the feed");
      assert.deepEqual(delivered.map((m) => Number(m.id)).filter((id) => feed.includes(id)), feed, "no event lost, none repeated, in feed order");
      const progress = afterward.filter((m) => m.event === "progress").map((m) => (JSON.parse(m.data) as { progress: number }).progress);
      assert.equal(progress.at(-1), 1, "the newest progress arrives after the reconnect");

      // Resuming after the very end gives the result again, and nothing else.
      const three = await openSse(`${h.origin}/jobs/${job.id}/events`, { "last-event-id": String(feed.at(-1)) });
      const tail = await readUntil(three, isResult);
      assert.deepEqual(tail.map((m) => m.event), ["result"]);
    });

    it("releases the stream's subscription when the client goes away", async () => {
      const job = await h.tasks.steps.enqueue({ steps: 1 });
      await h.http.streams.idle();
      const sse = await openSse(`${h.origin}/jobs/${job.id}/events`);
      await readUntil(sse, (m) => m.event === "state");
      assert.equal(h.http.streams.open, 1);
      sse.close();
      await h.http.streams.idle();
      assert.equal(h.http.streams.open, 0);
      h.go(job.id);
      await h.offload.job(job.id).result({ timeout: "10s" });
    });

    it("POST cancel: a waiting job is cancelled at once (idempotently), a succeeded one is a 409", async () => {
      const job = await h.tasks.steps.enqueue({ steps: 1 }, { delay: "1h" });
      const cancelled = await getJson(`${h.origin}/jobs/${job.id}/cancel`, { method: "POST" });
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body["state"], "cancelled");
      assert.equal(await job.state(), "cancelled");
      const again = await getJson(`${h.origin}/jobs/${job.id}/cancel`, { method: "POST" });
      assert.equal(again.status, 200, "cancelling twice is idempotent");
      assert.equal(again.body["state"], "cancelled");
      const finished = await h.tasks.report.enqueue({ text: "x" });
      await finished.result({ timeout: "10s" });
      const late = await getJson(`${h.origin}/jobs/${finished.id}/cancel`, { method: "POST" });
      assert.equal(late.status, 409);
      assert.equal(errorCode(late.body), "CONFLICT");
      assert.equal(await finished.state(), "succeeded");
    });

    it("POST cancel on a running job: 202 while the worker stops it (200 once stopped), and the stream ends cancelled", async () => {
      const job = await h.tasks.hang.enqueue(null);
      const sse = await openSse(`${h.origin}/jobs/${job.id}/events`);
      await readUntil(sse, (m) => m.event === "state" && JSON.parse(m.data).state === "active");
      const response = await getJson(`${h.origin}/jobs/${job.id}/cancel`, { method: "POST" });
      // 202 while the worker is still stopping it; a worker that heard the request at once may
      // already have stopped it before the route looked again, and then it is a 200.
      assert.equal(response.status, response.body["state"] === "cancelled" ? 200 : 202);
      assert.ok(["active", "cancelled"].includes(String(response.body["state"])), `state ${String(response.body["state"])}`);
      const end = await readUntil(sse, isResult);
      assert.equal(JSON.parse(end.at(-1)?.data ?? "{}").state, "cancelled");
    });

    it("a failed job shows a short error, never a stack or the rest of the message", async () => {
      const job = await h.tasks.boom.enqueue(null);
      await assert.rejects(job.result({ timeout: "10s" }));
      const { body } = await getJson(`${h.origin}/jobs/${job.id}`);
      assert.equal(body["state"], "failed");
      assert.deepEqual(body["error"], { name: "Error", message: "upstream said no" });
      assert.doesNotMatch(JSON.stringify(body), /secret detail|\bat .*\.ts/);
    });

    it("malformed id → 400, unknown id → 404, someone else's job → 403: all JSON", async () => {
      const bad = await getJson(`${h.origin}/jobs/not-a-job`);
      assert.equal(bad.status, 400);
      assert.equal(errorCode(bad.body), "BAD_REQUEST");
      const badEvents = await getJson(`${h.origin}/jobs/not-a-job/events`);
      assert.equal(badEvents.status, 400);
      const unknown = await getJson(`${h.origin}/jobs/01890000-0000-7000-8000-000000000000`);
      assert.equal(unknown.status, 404);
      assert.equal(errorCode(unknown.body), "NOT_FOUND");
      const unknownCancel = await getJson(`${h.origin}/jobs/01890000-0000-7000-8000-000000000000/cancel`, { method: "POST" });
      assert.equal(unknownCancel.status, 404);

      const mine = await h.tasks.steps.enqueue({ steps: 1 }, { owner: "alice", delay: "1h" });
      const asAlice = await getJson(`${h.origin}/jobs/${mine.id}`, { headers: { [OWNER_HEADER]: "alice" } });
      assert.equal(asAlice.status, 200);
      for (const [path, method] of [["", "GET"], ["/events", "GET"], ["/cancel", "POST"]] as const) {
        const asBob = await fetch(`${h.origin}/jobs/${mine.id}${path}`, { method, headers: { [OWNER_HEADER]: "bob" } });
        assert.equal(asBob.status, 403, `${method} ${path}`);
        assert.equal(errorCode((await asBob.json()) as Record<string, unknown>), "FORBIDDEN");
      }
      const badResume = await getJson(`${h.origin}/jobs/${mine.id}/events`, { headers: { "last-event-id": "yesterday" } });
      assert.equal(badResume.status, 400);
      assert.equal(await mine.state(), "scheduled", "bob's cancel did nothing");
      await mine.cancel();
    });

    it("a scoped token lets a browser follow one job without the session, until it expires", async () => {
      const job = await h.tasks.steps.enqueue({ steps: 1 }, { owner: "alice", delay: "1h" });
      const other = await h.tasks.steps.enqueue({ steps: 1 }, { owner: "alice", delay: "1h" });
      const token = h.http.tokenFor(job.id, { ttl: "10m" });
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}?token=${token}`)).status, 200);
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      // An app that sends its own bearer session on every request still follows the token link.
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}?token=${token}`, { headers: { authorization: "Bearer app-session-123" } })).status, 200);
      const sse = await openSse(`${h.origin}/jobs/${job.id}/events?token=${token}`);
      assert.equal(sse.status, 200);
      sse.close();
      assert.equal((await fetch(`${h.origin}/jobs/${other.id}?token=${token}`)).status, 403, "one job only");
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}/cancel?token=${token}`, { method: "POST" })).status, 403, "read-only token");
      const tampered = token.replace(/.$/, (c) => (c === "A" ? "B" : "A"));
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}?token=${tampered}`)).status, 403);
      h.clock.advance(10 * 60_000);
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}?token=${token}`)).status, 403, "expired");
      const canCancel = h.http.tokenFor(job.id, { cancel: true });
      assert.equal((await fetch(`${h.origin}/jobs/${job.id}/cancel?token=${canCancel}`, { method: "POST" })).status, 200);
      await other.cancel();
    });

    it("artifacts download through signed URLs; tampered and expired URLs get 403", async () => {
      const job = await h.tasks.report.enqueue({ text: "quarterly numbers" });
      await job.result({ timeout: "10s" });
      const { body } = await getJson(`${h.origin}/jobs/${job.id}`);
      const result = body["result"] as { file: string };
      const artifacts = body["artifacts"] as Array<{ name: string; size: number; url: string }>;
      assert.equal(artifacts.length, 1);
      assert.equal(artifacts[0]?.name, "report.txt");
      assert.equal(artifacts[0]?.size, "quarterly numbers".length);
      assert.match(result.file, new RegExp(`^/jobs/${job.id}/artifacts/report\\.txt\\?expires=\\d+&sig=`), "the result's reference became a URL");
      const download = await fetch(`${h.origin}${result.file}`);
      assert.equal(download.status, 200);
      assert.match(download.headers.get("content-disposition") ?? "", /attachment; filename="report.txt"/);
      assert.equal(await download.text(), "quarterly numbers");

      const url = new URL(result.file, h.origin);
      const forged = new URL(url);
      forged.pathname = forged.pathname.replace("report.txt", "other.txt");
      assert.equal((await fetch(forged)).status, 403, "another name");
      const later = new URL(url);
      later.searchParams.set("expires", String(Number(url.searchParams.get("expires")) + 3_600_000));
      assert.equal((await fetch(later)).status, 403, "a longer life");
      // The same expiry written another way is not the value that was signed.
      const written = url.searchParams.get("expires") ?? "";
      for (const spelling of [`0${written}`, `${written}.0`, `0x${Number(written).toString(16)}`, `${Number(written) / 1000}e3`]) {
        const respelled = new URL(url);
        respelled.searchParams.set("expires", spelling);
        assert.equal((await fetch(respelled)).status, 403, `expires=${spelling}`);
      }
      const badSig = new URL(url);
      badSig.searchParams.set("sig", "x".repeat(43));
      assert.equal((await fetch(badSig)).status, 403, "a made-up signature");
      h.clock.advance(15 * 60_000);
      assert.equal((await fetch(url)).status, 403, "expired");
    });
  });
}
