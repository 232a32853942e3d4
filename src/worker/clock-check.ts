// A worker's clock against its backend server's. Every backend call carries the caller's `now`
// (so tests run on a fake clock), which makes leases and run times instants of whichever host
// wrote them: a lease written by a host whose clock is behind is already over for a host whose
// clock is ahead, and that host's rescue sweep takes the job while it runs. BullMQ and Oban read
// the server's clock instead and never meet this; Offload keeps the injected clock and says so
// loudly when the hosts disagree, as it does for a Redis eviction policy.
import type { Backend } from "../backend/backend.ts";
import { type Clock, FakeClock } from "../core/clock.ts";

/** Past this, two hosts each this far off (opposite ways) disagree by a quarter of the default lease. */
export const SKEW_WARN_MS = 2_000;

/**
 * How far the server's clock is at least ahead of `clock` (negative: behind), from one round trip.
 * The server read its clock at some instant between the call and its reply, so only how far its
 * reading lies outside that interval is certain: a slow reply (a busy server, a connection being
 * made) proves less, never a skew that is not there.
 */
export async function measureSkew(clock: Clock, serverTime: () => Promise<number>): Promise<number> {
  const sent = clock.now();
  const server = await serverTime();
  const back = clock.now();
  if (server > back) return server - back;
  if (server < sent) return server - sent;
  return 0;
}

/** Calls measured: the largest skew any of them proves (one slow reply cannot hide it). */
const SAMPLES = 3;

/** The warning for a measured skew, if it is large enough to matter. */
export function skewWarning(skewMs: number, server: string): string | undefined {
  if (!(Math.abs(skewMs) > SKEW_WARN_MS)) return undefined;
  const seconds = (Math.abs(skewMs) / 1_000).toFixed(1);
  return (
    `this host's clock is ${seconds} s ${skewMs > 0 ? "behind" : "ahead of"} the ${server} server's: ` +
    "leases and run times are written with each host's own clock, so a worker on a host whose clock is ahead " +
    "may rescue jobs that are still running elsewhere (they run twice), and delays end early or late; " +
    "keep every host's clock in sync (NTP)"
  );
}

/** Backends already warned about: one warning per backend, however many workers share it. */
const warned = new WeakSet<Backend>();

/**
 * Compares `clock` with the backend server's, once, and warns (`OFFLOAD_CLOCK_SKEW`) when they
 * disagree. Nothing for a store in this process, nor for a fake clock (far from any server's on
 * purpose); a check that cannot reach the server says nothing, as the worker's own calls report
 * the outage.
 */
export async function checkClock(clock: Clock, backend: Backend): Promise<void> {
  if (!backend.serverTime || clock instanceof FakeClock || warned.has(backend)) return;
  const serverTime = backend.serverTime.bind(backend);
  let warning: string | undefined;
  try {
    let skew = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const proven = await measureSkew(clock, serverTime);
      if (Math.abs(proven) > Math.abs(skew)) skew = proven;
    }
    warning = skewWarning(skew, backend.name);
  } catch {
    return;
  }
  if (warning === undefined || warned.has(backend)) return;
  warned.add(backend);
  process.emitWarning(warning, { code: "OFFLOAD_CLOCK_SKEW" });
}
