import type { Logger } from 'pino';
import type { Credentials } from './credentials.js';
import { InvalidInput, NotFound, ProviderUnavailable, type EveryAuthError } from './errors.js';
import type { Events } from './events.js';
import { iso, reauthError, tenantOf } from './identity-rows.js';
import { KeyedLimit } from './keyed-limit.js';
import { within } from './deadline.js';
import { isRenewable, renewTokens } from './kinds/index.js';
import { leaseOwnerName } from './lease-holder.js';
import { causeOf, failureRecord, recordedFailure, unavailable, type FailureCause, type RecordedFailure } from './refresh-failures.js';
import { RefreshFailure, toBrokerError, type ClientContext } from './oauth/engine.js';
import type { TokenSet } from './oauth/token-set.js';
import { backoffDelay, retry, sleep } from './retry.js';
import type { Services } from './services.js';
import { eventRow, type IdentityRow, type Store } from './store/store.js';

export interface RefreshPolicy {
  /** Refresh when the token expires within this many ms. */
  marginMs: number;
  /**
   * How long a token read may wait for a refresh: then it answers with the current token while it
   * is valid, or `provider_unavailable` (reason `timeout`). The refresh itself goes on.
   */
  readDeadlineMs: number;
  /** After a retryable failure, callers get that failure for this long before one probes again; doubles per consecutive failure. */
  coolDownMs: number;
  maxCoolDownMs: number;
  /**
   * How long a lease on an identity row lasts before another process may take over, when its
   * holder's end cannot be seen (it usually can: its database session or process ends with it).
   */
  leaseMs: number;
  /** Attempts at the provider on 5xx, 429 and network errors, the first included. */
  attempts: number;
  /** First backoff delay; doubles each attempt, with jitter, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Token requests in flight at once per provider from this process: a storm of tokens expiring
   * together stays under the provider's rate limits. Only the requests wait in line, not the store
   * writes around them; a refresh that waited long renews its lease before its request. Each
   * replica has its own limit.
   */
  maxConcurrentPerProvider: number;
}

export const DEFAULT_REFRESH_POLICY: RefreshPolicy = {
  marginMs: 5 * 60_000,
  readDeadlineMs: 8_000,
  coolDownMs: 2_000,
  maxCoolDownMs: 60_000,
  leaseMs: 30_000,
  attempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  maxConcurrentPerProvider: 8,
};

/** What refreshExpiring did with one identity. */
export interface ExpiringRefresh {
  identityId: string;
  /** Set when the refresh failed. */
  error?: Error;
}

export interface RefreshExpiringOptions {
  /** Refresh identities whose token expires within this many ms. */
  aheadMs: number;
  /** Identities taken in this round (default 50). */
  limit?: number;
  /** Refreshes run at once (default 4); `maxConcurrentPerProvider` still bounds each provider. */
  concurrency?: number;
  /** Checked between identities: a round stops early once it returns true (a server shutting down). */
  shouldStop?: () => boolean;
  /** Told of each identity's outcome as it finishes (metrics, logs). */
  onResult?: (result: ExpiringRefresh) => void;
}

/** The collaborators a Refresher works with. */
export interface RefresherDeps {
  store: Store;
  credentials: Credentials;
  services: Services;
  events: Events;
  policy: RefreshPolicy;
  now: () => number;
  logger: Logger;
}

/** How often a waiter asks whether the lease holder is still there. */
const HOLDER_CHECK_MS = 250;

/**
 * Refreshes identities so that, however many callers ask at once, one token request per identity
 * reaches the provider: callers in this process share one promise; processes and replicas contend
 * for a lease on the row (a conditional UPDATE) and the loser waits for the winner's write, which
 * is fenced by the row's version. A waiter notices a dead holder through the store (its database
 * session or process ended) and takes over. A retryable failure is recorded on the row, and every
 * caller gets it until its cool-down ends; a read never waits past its deadline.
 */
export class Refresher {
  private readonly inflight = new Map<string, Promise<IdentityRow>>();
  /** Names this process as a lease holder, so that others can tell whether it still runs. */
  private readonly owner = leaseOwnerName();
  private readonly perProvider: KeyedLimit;

  private readonly store: Store;
  private readonly credentials: Credentials;
  private readonly services: Services;
  private readonly events: Events;
  private readonly policy: RefreshPolicy;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(deps: RefresherDeps) {
    ({
      store: this.store,
      credentials: this.credentials,
      services: this.services,
      events: this.events,
      policy: this.policy,
      now: this.now,
      logger: this.logger,
    } = deps);
    this.perProvider = new KeyedLimit(this.policy.maxConcurrentPerProvider);
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

  /**
   * A token read's refresh: the row refreshed, or as another caller left it, within the read
   * deadline (`deadlineMs` may shorten it: a caller that gives up sooner). Past the deadline, or
   * during the cool-down of a recorded failure, the current row while its token is valid, else
   * `provider_unavailable` naming the cause and when to try again.
   */
  async read(row: IdentityRow, options: { force?: boolean; deadlineMs?: number } = {}): Promise<IdentityRow> {
    const force = options.force === true;
    // A caller that forces a refresh asks for new tokens: with nothing to renew them by, it is told so
    // rather than handed the old ones. (Background and proxy renewals force too, and keep the old ones.)
    if (force && !isRenewable(this.credentials.openTokens(row))) {
      throw new InvalidInput(
        `Identity ${row.id} of service "${row.service_id}" has no refresh token (the provider issued none), so it cannot be refreshed; ` +
          (row.expires_at === null ? 'its access token does not expire.' : 'authorize again for a new token.'),
        'force',
      );
    }
    const failure = recordedFailure(row);
    if (failure && failure.retryAt > this.now()) return this.answerFailure(row, failure, force);
    const budget = Math.max(0, Math.min(this.policy.readDeadlineMs, options.deadlineMs ?? Infinity));
    const done = await within(this.refresh(row, force), budget);
    if (done) return done.value;
    if (!force && stillValid(row, this.now())) return row;
    throw unavailable(await this.providerId(row), 'timeout', this.policy.coolDownMs);
  }

  /** The row after a refresh, or the row as it is when another caller refreshed it meanwhile. */
  refresh(row: IdentityRow, force = false): Promise<IdentityRow> {
    const pending = this.inflight.get(row.id);
    if (pending) return pending;
    const run = this.refreshShared(row, force).finally(() => this.inflight.delete(row.id));
    this.inflight.set(row.id, run);
    return run;
  }

  /**
   * One background round: the active identities expiring within `aheadMs` whose lease is free, in
   * random order so replicas spread over them, up to `concurrency` at a time (the provider limit
   * still applies). Returns how many refreshes it started.
   */
  async refreshExpiring(options: RefreshExpiringOptions): Promise<number> {
    const now = this.now();
    const due = await this.store.listExpiring(now + options.aheadMs, now, options.limit ?? 50);
    shuffle(due);
    let started = 0;
    const running = new Set<Promise<void>>();
    for (const row of due) {
      if (options.shouldStop?.()) break;
      if (running.size >= (options.concurrency ?? 4)) await Promise.race(running);
      // The listed row may be a little old (another replica may have refreshed it since): the lease
      // claim is fenced on its version, and refresh() reads the row again only when the claim fails.
      if (!this.needsRefresh(row, options.aheadMs)) continue;
      const id = row.id;
      started++;
      const run: Promise<void> = this.refresh(row, true)
        .then(
          () => options.onResult?.({ identityId: id }),
          (error: Error) => options.onResult?.({ identityId: id, error }),
        )
        .finally(() => running.delete(run));
      running.add(run);
    }
    await Promise.all(running);
    return started;
  }

  private async refreshShared(start: IdentityRow, force: boolean): Promise<IdentityRow> {
    // A waiter gives up with the read deadline: nobody waits for it longer.
    const giveUpAt = this.now() + this.policy.readDeadlineMs;
    let checkedHolderAt = this.now();
    // The first look is the caller's row (read just now, or listed by the background round): the
    // claim re-checks version, status, cool-down and lease in its own statement, so a row that
    // changed meanwhile is read again only when the claim fails.
    let row: IdentityRow | undefined = start;
    for (let wait = 10; ; wait = Math.min(wait * 2, 250)) {
      const firstLook = row === start;
      row ??= await this.store.getIdentity(start.id);
      if (!row) throw new NotFound('identity', start.id);
      if (row.status !== 'active') throw reauthError(row);
      // Someone else wrote new tokens since we looked: theirs are as fresh as ours would be.
      if (row.version !== start.version) return row;
      if (!force && !this.needsRefresh(row)) return row;
      // Nothing to refresh with: serve the token while it lasts, without taking a lease for it.
      if (!isRenewable(this.credentials.openTokens(row))) {
        if (stillValid(row, this.now())) return row;
        return this.markNeedsReauth(row, reauthError(row));
      }
      const failure = recordedFailure(row);
      // A failure recorded by whoever refreshed, still cooling down: its answer, shared by every caller.
      if (failure && failure.retryAt > this.now()) return this.answerFailure(row, failure, force);
      const now = this.now();
      const leased = row.lease_until !== null && row.lease_until > now;
      // The lease holder's process or database session ended: its lease need not run out.
      let takeOver: string | undefined;
      if (leased && row.lease_owner !== null && now - checkedHolderAt >= HOLDER_CHECK_MS) {
        checkedHolderAt = now;
        if (await this.store.leaseHolderGone(row, row.lease_until! - this.policy.leaseMs)) takeOver = row.lease_owner;
      }
      if (!leased || takeOver) {
        const claimed = await this.claim(row, takeOver);
        if (claimed) return this.refreshHoldingLease(claimed.row, claimed.ctx, giveUpAt, force);
        // The caller's row was out of date: look again at once.
        if (firstLook) {
          row = undefined;
          continue;
        }
      }
      // Someone probes after a cool-down: the others get the recorded failure at once rather than wait.
      if (failure) return this.answerFailure(row, failure, force);
      if (this.now() > giveUpAt) {
        if (!force && stillValid(row, this.now())) return row;
        throw unavailable(await this.providerId(row), 'timeout', this.policy.coolDownMs);
      }
      row = undefined;
      await sleep(wait / 2 + Math.random() * wait);
    }
  }

  /**
   * Claims the row's lease; returns the row as claimed and the client context to refresh it with.
   * The context is made (or found cached) before the claim, so a service that cannot make a client
   * holds no lease; the claim reads the service's and provider's versions, and a context built from
   * older ones is made again (giving the lease back if that fails).
   */
  private async claim(row: IdentityRow, takeOver: string | undefined): Promise<{ row: IdentityRow; ctx: ClientContext } | undefined> {
    await this.services.clientContext(row.service_id, row.tenant_id);
    const claim = await this.store.claimLease(row.id, row.version, this.owner, this.now(), this.now() + this.policy.leaseMs, takeOver);
    if (!claim) return undefined;
    if (takeOver) this.logger.warn({ identityId: row.id, serviceId: row.service_id }, 'refresh lease holder is gone; taking over');
    try {
      return { row: claim.row, ctx: await this.services.clientContext(row.service_id, row.tenant_id, claim) };
    } catch (err) {
      await this.store.releaseLease(row.id, this.owner);
      throw err;
    }
  }

  /**
   * The current row while its token is valid (unless the caller forced a refresh: the old token is
   * not what was asked for); else the recorded failure, with the time left of its cool-down.
   */
  private async answerFailure(row: IdentityRow, failure: RecordedFailure, force: boolean): Promise<IdentityRow> {
    if (!force && stillValid(row, this.now())) return row;
    const retryAfterMs = failure.retryAt > this.now() ? failure.retryAt - this.now() : this.policy.coolDownMs;
    throw unavailable(await this.providerId(row), failure.cause, retryAfterMs);
  }

  /** The provider of the row's service, for naming it in an error without building a client. */
  private async providerId(row: IdentityRow): Promise<string> {
    return (await this.services.row(row.service_id)).provider_id;
  }

  /** `force`: the caller asked for new tokens, so a failure is theirs to see even while the old token works. */
  private async refreshHoldingLease(row: IdentityRow, ctx: ClientContext, giveUpAt: number, force: boolean): Promise<IdentityRow> {
    let tokens: TokenSet;
    try {
      tokens = this.credentials.openTokens(row);
    } catch (err) {
      await this.store.releaseLease(row.id, this.owner);
      throw err;
    }
    let fresh: TokenSet;
    let lapsed: Error | undefined;
    // Keeps the lease ours, or gives up before asking the provider: another process may have it now.
    const renewLease = async () => {
      if (!(await this.store.extendLease(row.id, this.owner, this.now() + this.policy.leaseMs))) {
        throw (lapsed = new ProviderUnavailable(ctx.provider.id, 'the refresh lease lapsed while waiting'));
      }
    };
    // In line for the provider: only the token requests are limited, never the store writes around them.
    const queued = this.now();
    const release = await this.perProvider.acquire(ctx.provider.id);
    try {
      // A long wait in line has eaten into the lease: renew it before the request.
      if (this.now() - queued > this.policy.leaseMs / 4) await renewLease();
      fresh = await retry(() => renewTokens(ctx, tokens, this.now), {
        delayMs: (err, attempt) => {
          const failure = err instanceof RefreshFailure ? err.failure : undefined;
          // A provider that did not answer in time is not asked again at once.
          if (failure?.kind !== 'retryable' || causeOf(failure) === 'timeout' || attempt >= this.policy.attempts) return undefined;
          const backoff = { baseMs: this.policy.baseDelayMs, maxMs: this.policy.maxDelayMs };
          const delay = Math.min(failure.retryAfterMs ?? backoffDelay(attempt, backoff), this.policy.maxDelayMs);
          // Retried only while the callers still wait.
          return this.now() + delay < giveUpAt ? delay : undefined;
        },
        onRetry: (err, attempt, delay) =>
          this.logger.warn(
            { identityId: row.id, serviceId: row.service_id, attempt, delay, reason: (err as RefreshFailure).failure.detail },
            'refresh failed, retrying',
          ),
        // Keep the lease ours for the next attempt.
        beforeNextAttempt: renewLease,
      }).finally(release);
    } catch (err) {
      release(); // (a lapse while waiting comes here before the request's own finally)
      if (err === lapsed) throw err;
      const failure = err instanceof RefreshFailure ? err.failure : undefined;
      const error = failure
        ? toBrokerError(ctx, failure, { serviceId: row.service_id, id: row.id, userId: row.user_id, tenantId: tenantOf(row) })
        : (err as Error);
      const needsReauth = failure?.kind === 'invalid_grant';
      // A retryable failure is recorded for every caller and replica to share until its cool-down ends.
      const recorded =
        failure?.kind === 'retryable' ? failureRecord(row, causeOf(failure), this.now(), this.policy, failure.retryAfterMs) : undefined;
      const answer = recorded
        ? unavailable(ctx.provider.id, recorded.refresh_failure as FailureCause, recorded.refresh_retry_at - this.now())
        : error;
      // The lease back, the failure recorded and its event, in one write fenced on the lease: a
      // holder that lost it records nothing, so a new holder's outcome (new tokens, say, when ours
      // failed on a refresh token it had just rotated) is not overwritten.
      const event = this.events.draft(needsReauth ? 'identity.needs_reauth' : 'identity.refresh_failed', failureData(answer));
      const written = await this.store.failRefresh(row.id, this.owner, this.now(), {
        status: needsReauth ? 'needs_reauth' : undefined,
        failure: recorded,
        event,
      });
      if (written) await this.events.announce(eventRow(event, written));
      // A provider outage is not the caller's problem while the token it has still works, unless
      // the caller forced the refresh: then the old token is not what was asked for.
      if (!force && !needsReauth && stillValid(row, this.now())) {
        this.logger.warn(
          { identityId: row.id, serviceId: row.service_id, error: error.message },
          'refresh failed, current token still valid',
        );
        return row;
      }
      throw answer;
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
    const sealed = this.credentials.sealTokens(row.id, merged);
    const event = this.events.draft('identity.refreshed', { expiresAt: iso(merged.expiresAt) });
    let updated: IdentityRow | undefined;
    try {
      updated = await this.retryStoreErrors(row, () =>
        this.store.completeRefresh(
          row.id,
          row.version,
          this.owner,
          { tokens: sealed, expires_at: merged.expiresAt, scope: merged.scope ?? null, last_refresh_at: now, failing_since: null },
          now,
          event,
        ),
      );
    } catch (err) {
      // The store stayed down: give the lease (and its database lock) back for whoever can write later.
      await this.store.releaseLease(row.id, this.owner).catch(() => undefined);
      throw err;
    }
    if (!updated) {
      this.logger.error(
        { identityId: row.id, serviceId: row.service_id },
        'refresh lease lost before the write; the new tokens were discarded',
      );
      throw new ProviderUnavailable(ctx.provider.id, 'the refresh lease was lost before its result could be stored');
    }
    // Stored with the write (one transaction); the listener hears of it now.
    await this.events.announce(eventRow(event, updated));
    if (row.failing_since !== null) await this.events.emit('identity.recovered', updated, { failingSince: iso(row.failing_since) });
    return updated;
  }

  /**
   * The new tokens exist only in memory until this write lands, and a rotated refresh token lost
   * here ends the grant at the next refresh. So a failing store (a database restart) is retried for
   * up to two lease lengths; the write stays fenced by lease owner and version, so retrying is safe.
   */
  private retryStoreErrors<T>(row: IdentityRow, write: () => Promise<T>): Promise<T> {
    const until = this.now() + this.policy.leaseMs * 2;
    return retry(write, {
      delayMs: (_err, attempt) => {
        const wait = Math.min(100 * 2 ** (attempt - 1), 1_000);
        return this.now() + wait > until ? undefined : wait;
      },
      onRetry: (err) =>
        this.logger.warn(
          { identityId: row.id, serviceId: row.service_id, reason: (err as Error).message },
          'storing refreshed tokens failed, retrying',
        ),
    });
  }

  /** An expired token with nothing to renew it by: the identity needs the user again (no lease is held for this). */
  private async markNeedsReauth(row: IdentityRow, error: Error): Promise<never> {
    await this.store.setStatus(row.id, 'needs_reauth', this.now());
    await this.store.markFailing(row.id, this.now());
    await this.events.emit('identity.needs_reauth', row, failureData(error));
    throw error;
  }
}

/** A failure event's data: the error's code, its message, and the provider's reason when it is an outage. */
const failureData = (error: Error) => ({
  error: (error as EveryAuthError).code ?? 'error',
  message: error.message,
  ...(error instanceof ProviderUnavailable && error.reason ? { reason: error.reason } : {}),
});

const stillValid = (row: IdentityRow, now: number) => row.expires_at === null || row.expires_at > now;

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
