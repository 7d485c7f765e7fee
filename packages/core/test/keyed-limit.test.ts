import { describe, expect, it } from 'vitest';
import { KeyedLimit } from '../src/keyed-limit.js';

/** A task that stays running until released, recording how many of its key ran at once. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('KeyedLimit', () => {
  it('runs at most max tasks of one key at once, the rest in arrival order, other keys alongside', async () => {
    const limit = new KeyedLimit(2);
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    let peak = 0;
    const runs = gates.map((g, i) =>
      limit.run('idp', async () => {
        started.push(i);
        peak = Math.max(peak, limit.active('idp'));
        await g.opened;
        return i;
      }),
    );
    const other = limit.run('other', async () => 'other');
    await expect(other).resolves.toBe('other');
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    gates[1]!.open();
    await runs[1];
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(limit.active('idp')).toBe(0);
  });

  it('frees the slot of a task that fails', async () => {
    const limit = new KeyedLimit(1);
    await expect(limit.run('idp', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limit.run('idp', async () => 'next')).resolves.toBe('next');
    expect(limit.active('idp')).toBe(0);
  });

  it('refuses a limit below one', () => {
    expect(() => new KeyedLimit(0)).toThrow(RangeError);
  });
});
