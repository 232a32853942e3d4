// Batches of lease operations (complete, release) may name one lease more than once. The port
// answers such a batch as if its items came one after the other: a repeated completion is OK and
// changes nothing (the first result stays), a repeated release finds the lease gone. A statement
// that handles the batch as a set sees every item against the same rows instead (PostgreSQL
// answered the repeat LEASE_LOST, SQLite could keep the repeat's result), so the SQL adapters
// send each lease once and answer the repeats from the first. Redis's scripts go item by item.
import type { Lease } from "./backend.ts";

/** One lease: a job id and one of its lease tokens (a batch may hold a stale and a current one). */
export function leaseKey(lease: Lease): string {
  return `${lease.id}\u0000${lease.token}`;
}

/** The batch with each lease once, where it first appears. */
export function distinctLeases<L extends Lease>(leases: readonly L[]): L[] {
  const seen = new Set<string>();
  return leases.filter((lease) => {
    const key = leaseKey(lease);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
