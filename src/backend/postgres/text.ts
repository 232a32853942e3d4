// What PostgreSQL text can hold: no U+0000, and no lone UTF-16 surrogate (a string cut in the
// middle of an emoji). node-postgres already sends U+FFFD for a lone surrogate in a text
// parameter, but jsonb refuses the "\ud83d" escape JSON.stringify writes for one, and a key read
// back would no longer equal the key that was sent. Both become U+FFFD here, before sending.

import { UNSTORABLE_TEXT } from "../../core/names.ts";

const UNSTORABLE = new RegExp(UNSTORABLE_TEXT.source, "g");

/** `text` as PostgreSQL will store it. */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, "\uFFFD");
}

/** The strings of a plain object (an attempt error, say) made storable, one level deep or more. */
export function storable<T>(value: T): T {
  if (typeof value === "string") return storableText(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => storable(item)) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), storable(v)])) as T;
  }
  return value;
}
