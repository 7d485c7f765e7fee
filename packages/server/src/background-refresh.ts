import type { Logger } from 'pino';
import { ScheduledLoop, type LocalBroker } from '@everyauth/core';
import type { Metrics } from './metrics.js';

export interface BackgroundRefreshOptions {
  /** How often this replica looks for identities about to expire. */
  intervalMs: number;
  /** Refresh identities whose token expires within this many ms. */
  aheadMs: number;
  /** Identities taken per round (default 50); a full round whose refreshes all succeeded is followed by the next at once. */
  batch?: number;
  /** Refreshes this replica runs at once (default 4); the broker's `refresh.maxConcurrentPerProvider` still bounds each provider. */
  concurrency?: number;
}

/**
 * Refreshes tokens ahead of expiry, so idle refresh tokens do not lapse and callers rarely wait.
 * Every replica runs one; they never refresh one identity twice because each refresh goes through
 * the broker's leased refresh: a lease claimed on the row at the version read, fenced by that version.
 */
export class BackgroundRefresher {
  private readonly loop: ScheduledLoop;

  constructor(
    private readonly broker: LocalBroker,
    private readonly options: BackgroundRefreshOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.loop = new ScheduledLoop({
      intervalMs: options.intervalMs,
      // Jitter, so replicas started together do not poll in step.
      jitter: 0.25,
      run: () => this.runOnce(),
      onError: (err) => this.logger.warn({ err: { message: (err as Error).message } }, 'background refresh round failed'),
    });
  }

  start(): void {
    this.loop.start();
  }

  /** Stops looking and waits for the refresh in flight, so none is cut off half-way. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /**
   * One round; returns how many refreshes it started. A full round that all succeeded means more
   * are probably due (a storm): the next starts at once, not after the interval. One with a failure
   * waits, so a provider that is down is not hammered.
   */
  async runOnce(): Promise<number> {
    let done = 0;
    const started = await this.broker.refreshExpiring({
      aheadMs: this.options.aheadMs,
      limit: this.options.batch,
      concurrency: this.options.concurrency,
      shouldStop: () => this.loop.isStopped,
      // Whether this replica or another did the refresh shows in the refresh counter (events of this process).
      onResult: ({ identityId, error }) => {
        this.metrics.backgroundRefreshes.inc({ outcome: error ? 'failed' : 'done' });
        if (error) this.logger.warn({ identityId, code: (error as { code?: string }).code }, 'background refresh failed');
        else done++;
      },
    });
    // After this run has ended (kick() does nothing while one is under way).
    if (done >= (this.options.batch ?? 50)) setImmediate(() => this.loop.kick());
    return started;
  }
}
