import type { Logger } from 'pino';
import { ScheduledLoop, type LocalBroker } from '@everyauth/core';
import type { Metrics } from './metrics.js';

export interface LifecycleLoopOptions {
  /** How often this replica runs a round (default every 60 s, jittered). */
  intervalMs?: number;
  /** Health-check each active identity this often (default daily); `false` turns scheduled checks off. */
  checkEveryMs?: number | false;
  /** Identities checked per round (default 50). */
  checkBatch?: number;
  /** Renew identities of providers with an idle limit before it (default true). */
  keepAlive?: boolean;
}

/**
 * The identities' slow clock, one round per interval on every replica: keep-alive refreshes before
 * providers' idle limits, failing identities turned `dead` after the configured days, and scheduled
 * health checks. Replicas may overlap: each refresh is leased and fenced, the dead marking is a
 * conditional UPDATE, and a check done twice only records the same outcome twice.
 */
export class LifecycleLoop {
  private readonly loop: ScheduledLoop;

  constructor(
    private readonly broker: LocalBroker,
    private readonly options: LifecycleLoopOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.loop = new ScheduledLoop({
      intervalMs: options.intervalMs ?? 60_000,
      jitter: 0.25,
      run: () => this.runOnce(),
      onError: (err) => this.logger.warn({ err: { message: (err as Error).message } }, 'lifecycle round failed'),
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One round; returns what it did. */
  async runOnce(): Promise<{ renewed: number; dead: number; checked: number }> {
    const shouldStop = () => this.loop.isStopped;
    const renewed =
      this.options.keepAlive === false
        ? 0
        : await this.broker.renewIdleIdentities({
            shouldStop,
            onResult: ({ identityId, error }) => {
              this.metrics.keepAliveRefreshes.inc({ outcome: error ? 'failed' : 'done' });
              if (error) this.logger.warn({ identityId, code: (error as { code?: string }).code }, 'keep-alive refresh failed');
            },
          });
    const dead = await this.broker.markDeadIdentities();
    const checked =
      this.options.checkEveryMs === false
        ? 0
        : await this.broker.checkDueIdentities({
            everyMs: this.options.checkEveryMs ?? 24 * 3600_000,
            limit: this.options.checkBatch,
            shouldStop,
          });
    return { renewed, dead, checked };
  }
}
