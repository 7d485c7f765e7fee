/**
 * Retrying with backoff: the one helper refresh (provider and store errors) and the server's
 * webhook deliveries use. p-retry would do, but needs Node 22; this is the part we use.
 */

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Backoff {
  /** The first delay; doubles with each attempt. */
  baseMs: number;
  /** No delay is longer than this. */
  maxMs: number;
}

/**
 * The delay after failed attempt `attempt` (1 = the first): `baseMs × 2^(attempt-1)`, capped at
 * `maxMs`, then jittered down to between half and all of it, so clients that failed together do
 * not retry together ("full jitter" variants, AWS Architecture Blog 2015).
 */
export function backoffDelay(attempt: number, { baseMs, maxMs }: Backoff): number {
  const ceiling = Math.min(baseMs * 2 ** (attempt - 1), maxMs);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

export interface RetryOptions {
  /** The wait before another attempt after `error` on attempt `attempt`; undefined gives up and throws `error`. */
  delayMs: (error: unknown, attempt: number) => number | undefined;
  /** Told of each retry before its wait (for logging). */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Runs after the wait, before the next attempt; what it throws ends the retries. */
  beforeNextAttempt?: (attempt: number) => Promise<void>;
}

/** Runs `attempt(1)`, `attempt(2)`, … until one resolves or `delayMs` gives up. */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const delay = options.delayMs(error, n);
      if (delay === undefined) throw error;
      options.onRetry?.(error, n, delay);
      await sleep(delay);
      await options.beforeNextAttempt?.(n + 1);
    }
  }
}
