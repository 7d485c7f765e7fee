import type { Logger } from 'pino';
import { NotFound, ProviderUnavailable, ReauthorizationRequired } from './errors.js';
import { randomToken } from './ids.js';
import { KeyedLimit } from './keyed-limit.js';
import { RefreshFailure, refreshTokenGrant, toBrokerError, type ClientContext } from './oauth/engine.js';
import type { TokenSet } from './oauth/token-set.js';
import type { IdentityRow, Store } from './store/store.js';

export interface RefreshPolicy {
  /** Refresh when the token expires within this many ms. */
  marginMs: number;
  /** How long a lease on an identity row lasts before another process may take over. */
  leaseMs: number;
  /** Attempts at the provider on 5xx, 429 and network errors, the first included. */
  attempts: number;
  /** First backoff delay; doubles each attempt, with jitter, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Refreshes running at once per provider in this process (a lease is claimed only once a slot
   * is free, so a queued refresh never lets its lease lapse). Keeps a storm of tokens expiring
   * together under the provider's rate limits; each replica has its own.
   */
  maxConcurrentPerProvider: number;
}

export const DEFAULT_REFRESH_POLICY: RefreshPolicy = {
  marginMs: 5 * 60_000,
  leaseMs: 30_000,
  attempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  maxConcurrentPerProvider: 8,
};

export interface RefreshHooks {
  context: (row: IdentityRow) => Promise<ClientContext>;
  openTokens: (row: IdentityRow) => TokenSet;
  sealTokens: (identityId: string, tokens: TokenSet) => string;
  onRefreshed: (row: IdentityRow) => Promise<void>;
  onFailed: (row: IdentityRow, error: Error, needsReauth: boolean) => Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Refreshes identities so that, however many callers ask at once, one token request per identity
 * reaches the provider: callers in this process share one promise; processes and replicas contend
 * for a lease on the row (a conditional UPDATE) and the loser waits for the winner's write, which
 * is fenced by the row's version.
 */
export class Refresher {
  private readonly inflight = new Map<string, Promise<IdentityRow>>();
  /** Names this process as a lease holder. */
  private readonly owner = randomToken().slice(0, 16);
  private readonly perProvider: KeyedLimit;

  constructor(
    private readonly store: Store,
    private readonly policy: RefreshPolicy,
    private readonly hooks: RefreshHooks,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {
    this.perProvider = new KeyedLimit(policy.maxConcurrentPerProvider);
  }

  /**
   * Whether the token expires within the margin. A token whose whole lifetime is shorter than the
   * margin is refreshed at half its life instead, or every read would refresh it.
   */
  needsRefresh(row: Pick<IdentityRow, 'expires_at' | 'updated_at'>, marginMs = this.policy.marginMs): boolean {
    if (row.expires_at === null) return false;
    const margin = Math.min(marginMs, Math.max(0, (row.expires_at - row.updated_at) / 2));
    return row.expires_at - this.now() <= margin;
  }

  /** The row after a refresh, or the row as it is when another caller refreshed it meanwhile. */
  refresh(row: IdentityRow, force = false): Promise<IdentityRow> {
    const pending = this.inflight.get(row.id);
    if (pending) return pending;
    const run = this.refreshShared(row, force).finally(() => this.inflight.delete(row.id));
    this.inflight.set(row.id, run);
    return run;
  }

  private async refreshShared(start: IdentityRow, force: boolean): Promise<IdentityRow> {
    const giveUpAt = this.now() + this.policy.leaseMs * 2 + this.policy.maxDelayMs;
    for (let wait = 10; ; wait = Math.min(wait * 2, 250)) {
      const row = await this.store.getIdentity(start.id);
      if (!row) throw new NotFound('identity', start.id);
      if (row.status !== 'active') throw reauthError(row);
      // Someone else wrote new tokens since we looked: theirs are as fresh as ours would be.
      if (row.version !== start.version) return row;
      if (!force && !this.needsRefresh(row)) return row;
      // Nothing to refresh with: serve the token while it lasts, without taking a lease for it.
      if (!this.hooks.openTokens(row).refreshToken) {
        if (row.expires_at === null || row.expires_at > this.now()) return row;
        return this.fail(row, reauthError(row), true);
      }
      const ctx = await this.hooks.context(row);
      const done = await this.perProvider.run(ctx.provider.id, async () => {
        const now = this.now();
        if (!(await this.store.claimLease(row.id, row.version, this.owner, now, now + this.policy.leaseMs))) return undefined;
        return this.refreshHoldingLease(row, ctx);
      });
      if (done) return done;
      if (this.now() > giveUpAt) {
        if (row.expires_at === null || row.expires_at > this.now()) return row;
        throw new ProviderUnavailable(row.service_id, 'another process holds the refresh and has not finished');
      }
      await sleep(wait / 2 + Math.random() * wait);
    }
  }

  private async refreshHoldingLease(row: IdentityRow, ctx: ClientContext): Promise<IdentityRow> {
    let tokens: TokenSet;
    try {
      tokens = this.hooks.openTokens(row);
    } catch (err) {
      await this.store.releaseLease(row.id, this.owner, this.now());
      throw err;
    }
    for (let attempt = 1; ; attempt++) {
      let fresh: TokenSet;
      try {
        fresh = await refreshTokenGrant(ctx, tokens.refreshToken!, this.now);
      } catch (err) {
        const failure = err instanceof RefreshFailure ? err.failure : undefined;
        if (failure?.kind === 'retryable' && attempt < this.policy.attempts) {
          const delay = Math.min(failure.retryAfterMs ?? this.backoff(attempt), this.policy.maxDelayMs);
          this.logger.warn(
            { identityId: row.id, serviceId: row.service_id, attempt, delay, reason: failure.detail },
            'refresh failed, retrying',
          );
          await sleep(delay);
          // Keep the lease ours for the next attempt.
          const now = this.now();
          if (!(await this.store.extendLease(row.id, this.owner, now + this.policy.leaseMs))) {
            throw new ProviderUnavailable(ctx.provider.id, 'the refresh lease lapsed during retries');
          }
          continue;
        }
        const error = failure
          ? toBrokerError(ctx, failure, { serviceId: row.service_id, id: row.id, userId: row.user_id, tenantId: tenantOf(row) })
          : (err as Error);
        const needsReauth = failure?.kind === 'invalid_grant';
        await this.store.releaseLease(row.id, this.owner, this.now(), needsReauth ? 'needs_reauth' : undefined);
        // A provider outage is not the caller's problem while the token it has still works.
        if (!needsReauth && (row.expires_at === null || row.expires_at > this.now())) {
          this.logger.warn(
            { identityId: row.id, serviceId: row.service_id, error: error.message },
            'refresh failed, current token still valid',
          );
          await this.hooks.onFailed(row, error, false);
          return row;
        }
        return this.fail(row, error, needsReauth);
      }

      // A provider that does not rotate keeps the old refresh token; one that does replaces it in this same write.
      const merged: TokenSet = {
        ...fresh,
        // Fields only the first response carried (Slack's team, Salesforce's instance_url) stay.
        native: { ...tokens.native, ...fresh.native },
        refreshToken: fresh.refreshToken ?? tokens.refreshToken,
        idToken: fresh.idToken ?? tokens.idToken,
        scope: fresh.scope ?? tokens.scope,
      };
      const now = this.now();
      const sealed = this.hooks.sealTokens(row.id, merged);
      const written = await this.retryStoreErrors(row, () =>
        this.store.completeRefresh(
          row.id,
          row.version,
          this.owner,
          { tokens: sealed, expires_at: merged.expiresAt, scope: merged.scope ?? null, last_refresh_at: now },
          now,
        ),
      );
      if (!written) {
        this.logger.error(
          { identityId: row.id, serviceId: row.service_id },
          'refresh lease lost before the write; the new tokens were discarded',
        );
        throw new ProviderUnavailable(ctx.provider.id, 'the refresh lease was lost before its result could be stored');
      }
      const updated = (await this.store.getIdentity(row.id))!;
      await this.hooks.onRefreshed(updated);
      return updated;
    }
  }

  /**
   * The new tokens exist only in memory until this write lands, and a rotated refresh token lost
   * here ends the grant at the next refresh. So a failing store (a database restart) is retried for
   * up to two lease lengths; the write stays fenced by lease owner and version, so retrying is safe.
   */
  private async retryStoreErrors(row: IdentityRow, write: () => Promise<boolean>): Promise<boolean> {
    const until = this.now() + this.policy.leaseMs * 2;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1_000)) {
      try {
        return await write();
      } catch (err) {
        if (this.now() + wait > until) throw err;
        this.logger.warn(
          { identityId: row.id, serviceId: row.service_id, reason: (err as Error).message },
          'storing refreshed tokens failed, retrying',
        );
        await sleep(wait);
      }
    }
  }

  private async fail(row: IdentityRow, error: Error, needsReauth: boolean): Promise<never> {
    if (needsReauth) await this.store.setStatus(row.id, 'needs_reauth', this.now());
    await this.hooks.onFailed(row, error, needsReauth);
    throw error;
  }

  private backoff(attempt: number): number {
    const base = this.policy.baseDelayMs * 2 ** (attempt - 1);
    return base / 2 + Math.random() * base;
  }
}

export const tenantOf = (row: Pick<IdentityRow, 'tenant_id'>) => (row.tenant_id === '' ? undefined : row.tenant_id);

export function reauthError(row: IdentityRow): ReauthorizationRequired {
  return new ReauthorizationRequired(row.service_id, row.id, row.user_id, tenantOf(row));
}
