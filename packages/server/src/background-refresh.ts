import type { Logger } from 'pino';
import type { LocalBroker } from '@everyauth/core';
import type { Metrics } from './metrics.js';

export interface BackgroundRefreshOptions {
  /** How often this replica looks for identities about to expire. */
  intervalMs: number;
  /** Refresh identities whose token expires within this many ms. */
  aheadMs: number;
  /** Identities taken per round (default 50); a full round is followed by the next at once. */
  batch?: number;
  /**
   * Refreshes this replica runs at once (default 4). The broker's per-provider limit
   * (`refresh.maxConcurrentPerProvider`) still bounds what one provider sees.
   */
  concurrency?: number;
}

/**
 * Refreshes tokens ahead of expiry, so idle refresh tokens do not lapse and callers rarely wait.
 * Every replica runs one; they never refresh one identity twice because each refresh goes through
 * the broker's Refresher: a lease claimed on the row at the version read, fenced by that version.
 */
export class BackgroundRefresher {
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private readonly inflight = new Set<Promise<unknown>>();
  private stopped = true;

  constructor(
    private readonly broker: LocalBroker,
    private readonly options: BackgroundRefreshOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops looking and waits for the refreshes in flight, so none is cut off half-way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
    await Promise.allSettled([...this.inflight]);
  }

  private schedule(full = false): void {
    if (this.stopped) return;
    // Jitter, so replicas started together do not poll in step.
    const delay = full ? 0 : this.options.intervalMs * (0.75 + Math.random() * 0.5);
    this.timer = setTimeout(() => {
      let taken = 0;
      this.round = this.runOnce()
        .then((n) => void (taken = n))
        .catch((err) => this.logger.warn({ err: { message: (err as Error).message } }, 'background refresh round failed'))
        .finally(() => {
          this.round = undefined;
          this.schedule(taken >= (this.options.batch ?? 50));
        });
    }, delay);
    this.timer.unref();
  }

  /**
   * One round: the identities expiring soon with a free lease, in random order so replicas spread
   * over them. Returns how many are fresh now (by this replica or another); when that is a full
   * batch, more are probably due, and the next round starts at once (not after a failing one,
   * which would hammer a provider that is down).
   */
  async runOnce(): Promise<number> {
    const store = this.broker.store;
    const now = Date.now();
    const due = await store.listExpiring(now + this.options.aheadMs, now, this.options.batch ?? 50);
    shuffle(due);
    const running = new Set<Promise<unknown>>();
    let done = 0;
    for (const { id } of due) {
      if (this.stopped) break;
      if (running.size >= (this.options.concurrency ?? 4)) await Promise.race(running);
      const row = await store.getIdentity(id);
      // Re-read: another replica may have refreshed it since the list was made; the Refresher is fenced on this version.
      if (!row || row.status !== 'active' || !this.broker.refresher.needsRefresh(row, this.options.aheadMs)) continue;
      const run = this.broker.refresher
        .refresh(row, true)
        .then(
          // Whether this replica or another did the refresh shows in the refresh counter (events of this process).
          () => {
            done++;
            this.metrics.backgroundRefreshes.inc({ outcome: 'done' });
          },
          (err) => {
            this.metrics.backgroundRefreshes.inc({ outcome: 'failed' });
            this.logger.warn({ identityId: id, code: (err as { code?: string }).code }, 'background refresh failed');
          },
        )
        .finally(() => {
          this.inflight.delete(run);
          running.delete(run);
        });
      this.inflight.add(run);
      running.add(run);
    }
    await Promise.all(running);
    return done;
  }
}

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
