import { ProviderUnavailable } from './errors.js';
import type { ProviderFailure } from './oauth/engine.js';
import type { IdentityRow, RefreshFailureWrite } from './store/store.js';

/** Why the provider could not answer a refresh, as callers see it in `reason`. */
export type FailureCause = 'timeout' | '5xx' | 'rate_limited' | 'network';

/**
 * A retryable refresh failure recorded on its identity row: until `retryAt`, callers on every
 * replica get this answer at once instead of asking the provider again; after it, one of them
 * probes. A good refresh clears it.
 */
export interface RecordedFailure {
  /** When it failed, epoch ms. */
  at: number;
  cause: FailureCause;
  /** The end of the cool-down, epoch ms. */
  retryAt: number;
  /** Consecutive failures, this one included. */
  count: number;
}

export interface CoolDown {
  /** After the first failure; doubles with each consecutive one. */
  coolDownMs: number;
  maxCoolDownMs: number;
}

const DESCRIPTIONS: Record<FailureCause, string> = {
  timeout: 'it did not answer in time',
  '5xx': 'it answered with a server error',
  rate_limited: 'it is limiting our requests',
  network: 'it cannot be reached',
};

/** The cause of a retryable provider failure. `temporarily_unavailable` (RFC 6749 §5.2) counts as a server error. */
export function causeOf(failure: Extract<ProviderFailure, { kind: 'retryable' }>): FailureCause {
  if (failure.error === 'timeout') return 'timeout';
  if (failure.error === 'network_error') return 'network';
  return failure.status === 429 ? 'rate_limited' : '5xx';
}

/** The failure recorded on a row, if there is one. */
export function recordedFailure(row: IdentityRow): RecordedFailure | undefined {
  if (row.refresh_failed_at === null || row.refresh_retry_at === null) return undefined;
  return {
    at: row.refresh_failed_at,
    cause: (row.refresh_failure ?? '5xx') as FailureCause,
    retryAt: row.refresh_retry_at,
    count: row.refresh_failures,
  };
}

/**
 * What to record after a failure: the cool-down doubles with each consecutive failure, from
 * `coolDownMs` up to `maxCoolDownMs`, and is never shorter than the provider's own Retry-After
 * (within that cap).
 */
export function failureRecord(row: IdentityRow, cause: FailureCause, now: number, policy: CoolDown, retryAfterMs = 0): RefreshFailureWrite {
  const count = row.refresh_failures + 1;
  const coolDown = Math.min(Math.max(policy.coolDownMs * 2 ** (count - 1), retryAfterMs), policy.maxCoolDownMs);
  return { refresh_failed_at: now, refresh_failure: cause, refresh_retry_at: now + coolDown, refresh_failures: count };
}

/** The answer a caller gets while the provider is unavailable: names the provider and the cause, and when to come back. */
export function unavailable(providerId: string, cause: FailureCause, retryAfterMs: number): ProviderUnavailable {
  return new ProviderUnavailable(providerId, DESCRIPTIONS[cause], { reason: cause, retryAfterMs: Math.max(0, retryAfterMs) });
}
