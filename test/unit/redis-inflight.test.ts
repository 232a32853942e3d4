// InFlightCalls, the adapter's guard around every Redis call, against a stand-in client whose
// status and events the test sets: ioredis sets its status at once and emits "ready" on a later
// tick, and a connection can be lost in between.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import type { Redis } from "ioredis";
import { InFlightCalls, NoConnectionError } from "../../src/backend/redis/connection.ts";

class StandIn extends EventEmitter {
  status = "connecting";
}

function setUp(connectWithinMs = 60_000): { client: StandIn; calls: InFlightCalls; sent: string[]; call: (name: string) => Promise<string> } {
  const client = new StandIn();
  const calls = new InFlightCalls(client as unknown as Redis, connectWithinMs);
  const sent: string[] = [];
  const call = (name: string): Promise<string> => calls.run(() => {
    sent.push(name);
    return Promise.resolve(name);
  });
  return { client, calls, sent, call };
}

describe("redis: calls made while the client connects", () => {
  it("are held, then sent in the order made, a call made between the status and the ready event included", async () => {
    const { client, sent, call } = setUp();
    const first = call("first");
    client.status = "ready"; // the event comes a tick later
    const second = call("second");
    assert.deepEqual(sent, [], "nothing sent before the ready event");
    client.emit("ready");
    assert.deepEqual(await Promise.all([first, second]), ["first", "second"]);
    assert.deepEqual(sent, ["first", "second"]);
    assert.equal(await call("third"), "third", "once ready, sent at once");
  });

  it("stay held, under their deadline, when the connection is lost before the ready event", async () => {
    const { client, sent, call } = setUp(50);
    const held = call("held");
    client.status = "ready";
    client.status = "reconnecting"; // lost again before ioredis emitted "ready"
    client.emit("ready");
    assert.deepEqual(sent, [], "not handed to a client that is reconnecting");
    await assert.rejects(held, (e: unknown) => e instanceof NoConnectionError && /no connection within 50 ms/.test(e.message));
    assert.deepEqual(sent, [], "and never sent after it was given up");
    client.status = "ready";
    client.emit("ready");
    assert.deepEqual(sent, []);
  });

  it("fail at once when the backend closes, and so does every later call", async () => {
    const { calls, sent, call } = setUp();
    const held = call("held");
    calls.close();
    await assert.rejects(held, /Connection is closed/);
    await assert.rejects(call("later"), /Connection is closed/);
    assert.deepEqual(sent, []);
  });
});
