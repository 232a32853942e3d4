// Asking the server again until something holds, with pauses that double, for a bounded time: the
// wait for a stalled claim's session to end, and the global feed's wait for writers to finish.

export interface AskUntilOptions {
  /** How long to keep asking, from the first ask. */
  readonly withinMs: number;
  readonly firstPauseMs: number;
  readonly maxPauseMs: number;
}

/**
 * Calls `holds` until it answers true (resolves true), or until the next pause would end past
 * `withinMs` (resolves false). `holds` is asked at once, then after each pause.
 */
export async function askUntil(holds: () => Promise<boolean>, options: AskUntilOptions): Promise<boolean> {
  const giveUpAt = performance.now() + options.withinMs;
  for (let pause = options.firstPauseMs; ; pause = Math.min(pause * 2, options.maxPauseMs)) {
    if (await holds()) return true;
    if (performance.now() + pause > giveUpAt) return false;
    await new Promise<void>((resolve) => setTimeout(resolve, pause));
  }
}
