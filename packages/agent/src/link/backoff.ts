/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * Exponential backoff with full jitter (a uniform delay in [0, min(max, base * 2^attempt)]), so a
 * fleet of agents that lost the gateway at once does not come back at once. `random` is injected.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
