/**
 * Health checks: the provider's cheap test request (catalog `test`, else its userinfo or profile
 * URL) sent with the identity's fresh credential, applied as its kind applies it. A 401 or 403, or a token that cannot be had, marks
 * the identity unhealthy (`identity.check_failed`); the next good check after a bad one is
 * `identity.recovered`. A provider that is down (5xx, network) says nothing about the credential:
 * that check throws ProviderUnavailable and records nothing.
 */
import type { FreshIdentity, IdentityCheck } from './broker.js';
import { EveryAuthError, NotFound, ProviderUnavailable } from './errors.js';
import type { Events } from './events.js';
import type { Identities } from './identities.js';
import { iso } from './identity-rows.js';
import type { Services } from './services.js';
import type { IdentityRow, Store } from './store/store.js';
import * as validate from './validate.js';

export interface HealthOptions {
  /** Timeout of one test request. */
  timeoutMs: number;
  now: () => number;
}

export interface CheckDueOptions {
  /** Check identities not checked for this long. */
  everyMs: number;
  /** Identities taken in this round (default 50). */
  limit?: number;
  shouldStop?: () => boolean;
}

export class Health {
  constructor(
    private readonly store: Store,
    private readonly services: Services,
    private readonly identities: Identities,
    private readonly events: Events,
    private readonly options: HealthOptions,
  ) {}

  async check(identityId: string): Promise<IdentityCheck> {
    const id = validate.lookupId(identityId);
    const row = await this.store.getIdentity(id);
    if (!row) throw new NotFound('identity', id);
    const outcome = await this.probe(row);
    const now = this.options.now();
    await this.store.recordCheck(row.id, outcome.healthy, now);
    if (!outcome.healthy) await this.events.emit('identity.check_failed', row, { reason: outcome.reason, status: outcome.status });
    else if (row.healthy === 0) await this.events.emit('identity.recovered', row, { after: 'check' });
    return { identityId: row.id, checkedAt: iso(now)!, ...outcome };
  }

  /** One scheduled round: active identities not checked within `everyMs`, one at a time. Returns how many it checked. */
  async checkDue(options: CheckDueOptions): Promise<number> {
    const rows = await this.store.listUnchecked(this.options.now() - options.everyMs, options.limit ?? 50);
    let checked = 0;
    for (const row of rows) {
      if (options.shouldStop?.()) break;
      await this.check(row.id).then(
        () => checked++,
        () => undefined, // a provider outage: tried again next round
      );
    }
    return checked;
  }

  private async probe(row: IdentityRow): Promise<Omit<IdentityCheck, 'identityId' | 'checkedAt'>> {
    if (row.status !== 'active') return { healthy: false, reason: row.status };
    let fresh: FreshIdentity;
    try {
      fresh = (await this.identities.get(row.service_id, row.id))!;
    } catch (err) {
      if (err instanceof ProviderUnavailable) throw err;
      return { healthy: false, reason: err instanceof EveryAuthError ? err.code : 'error' };
    }
    const ctx = await this.services.context(await this.services.row(row.service_id));
    // The provider's declared test request (the one the credential form checks with), unless it
    // needs values only the form had; else the userinfo or profile URL.
    const declared = ctx.provider.test && !ctx.provider.test.url.includes('{') ? ctx.provider.test : undefined;
    const check = declared ?? testRequestOf(ctx.provider.userinfoUrl ?? ctx.provider.profile?.url);
    // No test request declared: a token that could be had (refreshed if due) is all there is to know.
    if (!check) return { healthy: true };
    let response: Response;
    try {
      response = await fetch(check.url, {
        method: check.method,
        // Applied by the credential's kind: a bearer token, an API key header, basic, OAuth 1 …
        headers: { accept: 'application/json', ...fresh.headers(check.method, check.url) },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await response.body?.cancel();
    } catch (err) {
      throw new ProviderUnavailable(ctx.provider.id, `the test request failed: ${(err as Error).message}`, { cause: err });
    }
    // RFC 6750 §3.1: invalid_token is 401, insufficient_scope 403; both are the credential's fault.
    if (response.status === 401 || response.status === 403)
      return { healthy: false, status: response.status, reason: `HTTP ${response.status}` };
    if (response.status >= 500 || response.status === 429)
      throw new ProviderUnavailable(ctx.provider.id, `the test request answered HTTP ${response.status}`);
    return { healthy: true, status: response.status };
  }
}

const testRequestOf = (url: string | undefined) => (url ? { url, method: 'GET' as const } : undefined);
