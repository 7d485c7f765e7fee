/**
 * A task run again and again on a timer, one run at a time: the server's background refresh and
 * webhook poller. The timer is unref'd, so a loop never keeps the process alive on its own.
 */
export interface ScheduledLoopOptions {
  /** The pause between the end of one run and the start of the next. */
  intervalMs: number;
  /** Spreads each pause over ±jitter of it (0.25: 75–125 %), so replicas started together do not run in step. */
  jitter?: number;
  /** One run. Its errors go to `onError`; the loop goes on. */
  run: () => Promise<unknown>;
  onError: (error: unknown) => void;
}

export class ScheduledLoop {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;

  constructor(private readonly options: ScheduledLoopOptions) {}

  /** Whether stop() was called (or start() never was): a long run checks this between items. */
  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.pause());
  }

  /** Runs now unless a run is under way (which will see the new work) or the loop is stopped. */
  kick(): void {
    if (!this.stopped && !this.running) this.schedule(0);
  }

  /** Stops the timer and waits for the run in progress, so no work is cut off half-way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private pause(): number {
    const jitter = this.options.jitter ?? 0;
    return this.options.intervalMs * (1 - jitter + Math.random() * 2 * jitter);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running ??= this.options
        .run()
        .then(() => undefined, this.options.onError)
        .finally(() => {
          this.running = undefined;
          this.schedule(this.pause());
        });
    }, ms);
    this.timer.unref();
  }
}
