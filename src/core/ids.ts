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

/** A UUIDv7 for `nowMs`. Within one millisecond a 12-bit counter keeps ids increasing in this process. */
export function uuidv7(nowMs: number = Date.now()): string {
  if (nowMs === lastMs) {
    sequence = (sequence + 1) & 0xfff;
  } else {
    lastMs = nowMs;
    sequence = randomBytes(2).readUInt16BE(0) & 0x7ff; // leave headroom for the counter
  }
  const bytes = randomChunk();
  bytes.writeUIntBE(nowMs, 0, 6);
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
