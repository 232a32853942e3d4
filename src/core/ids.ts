// Time-ordered ids (UUIDv7, RFC 9562): sortable by creation, unique across processes.
import { randomBytes, randomUUID } from "node:crypto";

let lastMs = -1;
let pool = Buffer.alloc(0);
let offset = 0;

/** 16 fresh random bytes, cut from a pooled buffer: one crypto call per 256 ids instead of one each. */
function randomChunk(): Buffer {
  if (offset + 16 > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  const chunk = Buffer.from(pool.subarray(offset, offset + 16));
  offset += 16;
  return chunk;
}
let sequence = 0;
/** A clock step back up to this far (NTP, a VM resumed) keeps ids increasing; a bigger one starts over. */
const MAX_BACKSTEP_MS = 10_000;

/**
 * A UUIDv7 for `nowMs`. Ids made in this process keep increasing: within one millisecond a 12-bit
 * counter orders them, and when it runs out (or the clock steps back a little) the timestamp is
 * carried one millisecond ahead, as RFC 9562 (6.2, method 1) allows.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const ms = Math.floor(nowMs);
  if (ms > lastMs || lastMs - ms > MAX_BACKSTEP_MS) {
    lastMs = ms;
    sequence = randomBytes(2).readUInt16BE(0) & 0x7ff; // leave headroom for the counter
  } else if (sequence < 0xfff) {
    sequence++;
  } else {
    lastMs++;
    sequence = randomBytes(2).readUInt16BE(0) & 0x7ff;
  }
  const bytes = randomChunk();
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isJobId(value: string): boolean {
  return UUID.test(value);
}

/** A random opaque token, for leases and worker ids. */
export function randomToken(): string {
  return randomUUID().replaceAll("-", "");
}
