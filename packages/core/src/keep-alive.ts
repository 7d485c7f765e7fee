/**
 * Keep-alive: some providers end a refresh token that goes unused for a while (catalog
 * `refreshToken.idleDays`). An identity whose app stops reading it would lapse into needs_reauth
 * though nothing is wrong, so identities of those providers are refreshed once their last token
 * write is older than the idle limit less a margin. Every refresh goes through the Refresher, whose
 * per-provider limit keeps a round over thousands of identities within the provider's rate limits.
 */
import type { ExpiringRefresh, Refresher } from './refresher.js';
import type { Services } from './services.js';
import type { Store } from './store/store.js';

const DAY_MS = 24 * 3600_000;

export interface RenewIdleOptions {
  /**
   * How long before the idle limit to renew: a fraction of it (default 0.25, so a 14-day limit is
   * renewed after 10.5 idle days), never less than one day, so a missed round or two is harmless.
   */
  marginFraction?: number;
  /** Identities taken in this round (default 1,000). */
  limit?: number;
  shouldStop?: () => boolean;
  onResult?: (result: ExpiringRefresh) => void;
}

export class KeepAlive {
  constructor(
    private readonly store: Store,
    private readonly services: Services,
    private readonly refresher: Refresher,
    private readonly now: () => number,
  ) {}

  /** The renewal age per service whose provider declares an idle limit: renew once idle this long. */
  async renewAfterMs(marginFraction = 0.25): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const service of await this.services.listServices()) {
      const idleDays = (await this.services.getProvider(service.providerId)).refreshToken?.idleDays;
      if (idleDays === undefined) continue;
      const idleMs = idleDays * DAY_MS;
      out.set(service.id, idleMs - Math.max(idleMs * marginFraction, Math.min(DAY_MS, idleMs / 2)));
    }
    return out;
  }

  /**
   * One round: every idle identity due for renewal, refreshed concurrently (the Refresher caps how
   * many reach each provider at once). Returns how many refreshes it started.
   */
  async renewIdle(options: RenewIdleOptions = {}): Promise<number> {
    const now = this.now();
    const byAge = new Map<number, string[]>();
    for (const [serviceId, ageMs] of await this.renewAfterMs(options.marginFraction)) {
      byAge.set(ageMs, [...(byAge.get(ageMs) ?? []), serviceId]);
    }
    let started = 0;
    for (const [ageMs, serviceIds] of byAge) {
      const rows = await this.store.listIdle(serviceIds, now - ageMs, now, (options.limit ?? 1_000) - started);
      const runs: Promise<void>[] = [];
      for (const row of rows) {
        if (options.shouldStop?.()) break;
        started++;
        runs.push(
          this.refresher.refresh(row, true).then(
            () => options.onResult?.({ identityId: row.id }),
            (error: Error) => options.onResult?.({ identityId: row.id, error }),
          ),
        );
      }
      await Promise.all(runs);
    }
    return started;
  }
}
