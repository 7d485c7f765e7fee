/**
 * At most `max` holders at once per key; the others wait, first come first served. The refresher
 * keeps a refresh storm (many tokens expiring together) from piling requests onto one provider.
 */
export class KeyedLimit {
  private readonly slots = new Map<string, { active: number; waiting: (() => void)[] }>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`A concurrency limit must be a whole number of at least 1; got ${max}.`);
  }

  /** Waits for a slot of `key`; resolves to its release, which may be called more than once. */
  async acquire(key: string): Promise<() => void> {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = { active: 0, waiting: [] }));
    if (slot.active < this.max) slot.active++;
    else await new Promise<void>((resolve) => slot.waiting.push(resolve));
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      // Hand the slot straight to the next in line, or give it back.
      const next = slot.waiting.shift();
      if (next) next();
      else if (--slot.active === 0) this.slots.delete(key);
    };
  }

  /** Runs `task` holding a slot of `key`. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await task();
    } finally {
      release();
    }
  }

  /** Slots of `key` held now. */
  active(key: string): number {
    return this.slots.get(key)?.active ?? 0;
  }
}
