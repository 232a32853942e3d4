// Payloads and results are stored as JSON. JSON.stringify silently drops functions and throws
// late on BigInt and cycles; we check first so the caller gets a typed error naming the path,
// and nothing half-valid is stored.
import { NotSerializableError, PayloadTooLargeError } from "./errors.ts";

export const DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024;

function check(value: unknown, path: string, key: string, what: string, seen: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new NotSerializableError(what, path, `${value} is not a finite number`);
      return;
    case "undefined":
      return; // dropped from objects, as JSON does; top level handled by the caller
    case "bigint":
      throw new NotSerializableError(what, path, "BigInt is not JSON (convert it to a string)");
    case "function":
      throw new NotSerializableError(what, path, "a function cannot be stored");
    case "symbol":
      throw new NotSerializableError(what, path, "a symbol cannot be stored");
    case "object":
      break;
  }
  if (value === null) return;
  const object = value as object;
  if (seen.has(object)) throw new NotSerializableError(what, path, "circular reference");
  if (object instanceof Date) {
    // JSON.stringify writes null for it, silently.
    if (Number.isNaN(object.getTime())) throw new NotSerializableError(what, path, "an invalid Date");
    return;
  }
  // Each of these would be stored as {} (or as an object of numbered bytes), silently.
  if (object instanceof Promise) throw new NotSerializableError(what, path, "a Promise (a missing await?)");
  // JSON.stringify stores what toJSON returns (Decimal, Luxon, Buffer, class instances): check that.
  const toJSON: unknown = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    seen.add(object);
    check((toJSON as (key: string) => unknown).call(object, key), path, key, what, seen);
    seen.delete(object);
    return;
  }
  if (object instanceof Map || object instanceof Set || object instanceof WeakMap || object instanceof WeakSet) {
    throw new NotSerializableError(what, path, `${object.constructor.name} is not JSON (use an object or array)`);
  }
  if (object instanceof RegExp) throw new NotSerializableError(what, path, "a RegExp is not JSON (store its source as a string)");
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    throw new NotSerializableError(what, path, "binary data is not JSON (encode it as base64, or store it as an artifact)");
  }
  seen.add(object);
  if (Array.isArray(object)) {
    object.forEach((item: unknown, i) => check(item, `${path}[${i}]`, String(i), what, seen));
  } else {
    for (const [k, v] of Object.entries(object)) check(v, path ? `${path}.${k}` : k, k, what, seen);
  }
  seen.delete(object);
}

/** JSON text for `value`, or a NotSerializableError / PayloadTooLargeError. */
export function encodeJson(value: unknown, what: string, maxBytes: number = Number.POSITIVE_INFINITY): string {
  if (value === undefined) return "null";
  let text: string | undefined;
  try {
    check(value, "", "", what, new Set());
    text = JSON.stringify(value) as string | undefined;
  } catch (error) {
    // Thousands of levels of nesting exhaust the stack (of the check, or of JSON.stringify), and a
    // text past V8's longest string is refused: either way a RangeError, which says nothing of
    // which value it was. (TypeErrors from a toJSON() or a getter are the caller's own: left as is.)
    if (error instanceof RangeError) throw new NotSerializableError(what, "", `${error.message} (nested too deeply, or too large)`);
    throw error;
  }
  // A toJSON() that returns undefined leaves JSON.stringify nothing to give.
  if (text === undefined) throw new NotSerializableError(what, "", "its toJSON() returned undefined");
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > maxBytes) throw new PayloadTooLargeError(what, bytes, maxBytes);
  return text;
}

export function decodeJson(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return undefined;
  return JSON.parse(text) as unknown;
}
