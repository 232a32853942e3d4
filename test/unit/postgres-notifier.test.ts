// The PostgreSQL backend's notifier (src/backend/postgres/notifier.ts): a NOTIFY after each write
// has committed, coalesced, but never fewer than a listener needs: a change made while one is on
// its way gets one more after it (the one on its way may have been read before the change).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Notifier, QUIET_PACE_MS, RESEND_PAUSES_MS } from "../../src/backend/postgres/notifier.ts";
import { deferred, turn } from "../support/deferred.ts";

/** A notifier whose sends wait until the test answers them, in order; its pauses are recorded and pass at once. */
function held(): { notifier: Notifier; sent: string[]; pauses: number[]; answer: () => Promise<void> } {
  const sent: string[] = [];
  const pauses: number[] = [];
  const replies: { resolve: (value: void) => void }[] = [];
  const notifier = new Notifier("abc", (payload) => {
    sent.push(payload);
    const reply = deferred<void>();
    replies.push(reply);
    return reply.promise;
  }, (ms) => {
    pauses.push(ms);
    return Promise.resolve();
  });
  const answer = async (): Promise<void> => {
    replies.shift()?.resolve();
    for (let i = 0; i < 5; i++) await turn();
  };
  return { notifier, sent, pauses, answer };
}

describe("postgres notifier", () => {
  it("sends at once when nothing is on its way; changes made meanwhile share one more, sent after it", async () => {
    const { notifier, sent, answer } = held();
    notifier.notify(false);
    assert.deepEqual(sent, ["abc"]);
    notifier.notify(false);
    notifier.notify(false);
    notifier.notify(false);
    assert.deepEqual(sent, ["abc"], "nothing more while one is on its way");
    await answer();
    assert.deepEqual(sent, ["abc", "abc"], "one more for the three changes made meanwhile");
    await answer();
    assert.deepEqual(sent, ["abc", "abc"], "and no more than that");
    notifier.notify(false);
    assert.deepEqual(sent, ["abc", "abc", "abc"], "idle again: at once");
    await answer();
  });

  it("paces quiet NOTIFYs owed one after another; new work is never held back", async () => {
    const { notifier, sent, pauses, answer } = held();
    notifier.notify(false);
    notifier.notify(false);
    await answer();
    await answer();
    assert.deepEqual([sent, pauses], [["abc", "abc"], []], "new work: the owed one at once");
    notifier.notify(true);
    notifier.notify(true);
    await answer();
    assert.equal(pauses.length, 1, "a quiet one owed waits out the pace from the last send");
    assert.ok((pauses[0] ?? 0) > 0 && (pauses[0] ?? 0) <= QUIET_PACE_MS, String(pauses[0]));
    await answer();
    assert.deepEqual(sent, ["abc", "abc", "abc quiet", "abc quiet"]);
    notifier.notify(true);
    await answer();
    assert.equal(pauses.length, 1, "a lone quiet change is sent at once");
  });

  it("keeps quiet changes and new work apart: each kind has its own", async () => {
    const { notifier, sent, answer } = held();
    notifier.notify(true);
    notifier.notify(false);
    assert.deepEqual(sent, ["abc quiet", "abc"]);
    await answer();
    await answer();
  });

  it("a send that fails is sent again after a pause, a few times at most; a change meanwhile shares it", async () => {
    const sent: string[] = [];
    const pauses: number[] = [];
    let failures = 2;
    const replies: (() => void)[] = [];
    const notifier = new Notifier("abc", (payload) => {
      sent.push(payload);
      return failures-- > 0 ? Promise.reject(new Error("Connection terminated unexpectedly")) : Promise.resolve();
    }, (ms) => {
      pauses.push(ms);
      return new Promise<void>((resolve) => replies.push(resolve));
    });
    notifier.notify(false);
    await turn();
    assert.deepEqual([sent, pauses], [["abc"], [RESEND_PAUSES_MS[0]]], "the write has committed and no one heard: owed still");
    notifier.notify(false); // a change during the pause: the resend covers it
    replies.shift()?.();
    await turn();
    assert.deepEqual([sent, pauses], [["abc", "abc"], [RESEND_PAUSES_MS[0], RESEND_PAUSES_MS[1]]]);
    replies.shift()?.();
    await turn();
    assert.deepEqual(sent, ["abc", "abc", "abc"], "sent");
    await notifier.close();
    assert.equal(pauses.length, 2, "nothing more owed");

    const refused: string[] = [];
    const giving = new Notifier("abc", (payload) => {
      refused.push(payload);
      return Promise.reject(new Error("Connection terminated unexpectedly"));
    }, () => Promise.resolve());
    giving.notify(true);
    await giving.close();
    assert.equal(refused.length, 1, "closed: not sent again");
    const down = new Notifier("abc", (payload) => {
      refused.push(payload);
      return Promise.reject(new Error("connect ECONNREFUSED"));
    }, () => Promise.resolve());
    refused.length = 0;
    down.notify(true);
    for (let i = 0; i < 10; i++) await turn();
    assert.equal(refused.length, 1 + RESEND_PAUSES_MS.length, "then given up on: the listeners look again once they are back");
    await down.close();
  });

  it("close() ends a pause before a resend", async () => {
    const sent: string[] = [];
    const notifier = new Notifier("abc", (payload) => {
      sent.push(payload);
      return Promise.reject(new Error("Connection terminated unexpectedly"));
    }, (_ms, signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())));
    notifier.notify(false);
    await turn();
    await notifier.close(); // would never settle if the pause's signal were not aborted
    assert.deepEqual(sent, ["abc"]);
  });

  it("close() waits for the sends on their way, sends the one owed for changes made before it, and nothing after", async () => {
    const { notifier, sent, pauses, answer } = held();
    notifier.notify(true);
    notifier.notify(true); // committed while the first was on its way, which may have gone before it
    let closed = false;
    const closing = notifier.close().then(() => (closed = true));
    await turn();
    assert.equal(closed, false, "the send on its way is waited for");
    await answer();
    assert.deepEqual(sent, ["abc quiet", "abc quiet"], "the one owed is sent: its change committed before close()");
    assert.deepEqual(pauses, [], "at once");
    assert.equal(closed, false);
    await answer();
    await closing;
    notifier.notify(false);
    assert.deepEqual(sent, ["abc quiet", "abc quiet"], "nothing after");
  });
});
