/** Methods whose repetition has the effect of one request (RFC 9110 §9.2.2): only these are retried. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export const isIdempotent = (method: string) => IDEMPOTENT.has(method.toUpperCase());

/** How long `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) asks to wait, in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The retry budget for 429 and 503: how many retries, and how much waiting in all. */
export interface RetryBudget {
  /** Retries after the first attempt (default 2). */
  retries: number;
  /** Longest total wait across the retries (default 5 s); a longer Retry-After is passed back to the caller instead. */
  maxWaitMs: number;
}

export const DEFAULT_RETRY_BUDGET: RetryBudget = { retries: 2, maxWaitMs: 5_000 };

/**
 * The wait before retrying a 429 or 503, or undefined to pass the response back: only idempotent
 * methods, only with a Retry-After the server sent, only while the budget lasts.
 */
export function retryDelay(
  status: number,
  retryAfter: string | string[] | undefined,
  method: string,
  retried: number,
  waited: number,
  budget: RetryBudget,
): number | undefined {
  if ((status !== 429 && status !== 503) || !isIdempotent(method) || retried >= budget.retries) return undefined;
  const wait = retryAfterMs(typeof retryAfter === 'string' ? retryAfter : null);
  return wait === undefined || waited + wait > budget.maxWaitMs ? undefined : wait;
}
