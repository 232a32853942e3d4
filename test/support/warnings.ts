// Process warnings of one code (process.emitWarning(message, { code })), as a test sees them.

/** Collects the warnings of `code` this process emits, until `stop()`; `next` is the first. */
export function warningsOf(code: string): { readonly seen: string[]; readonly next: Promise<string>; stop(): void } {
  const seen: string[] = [];
  let arrived!: (message: string) => void;
  const next = new Promise<string>((resolve) => (arrived = resolve));
  const listener = (warning: Error & { code?: string }): void => {
    if (warning.code !== code) return;
    seen.push(warning.message);
    arrived(warning.message);
  };
  process.on("warning", listener);
  return { seen, next, stop: () => process.off("warning", listener) };
}
