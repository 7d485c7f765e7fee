import { describe, expect, it } from 'vitest';
import { within } from '../src/deadline.js';

const later = <T>(ms: number, value: T, fail = false) =>
  new Promise<T>((resolve, reject) => setTimeout(() => (fail ? reject(new Error(String(value))) : resolve(value)), ms));

describe('within', () => {
  it('gives the value of work that finishes in time', async () => {
    expect(await within(later(5, 'v'), 1_000)).toEqual({ value: 'v' });
  });

  it('throws the error of work that fails in time', async () => {
    await expect(within(later(5, 'boom', true), 1_000)).rejects.toThrow('boom');
  });

  it('gives undefined when the time is up; the work goes on, and its late failure is not unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const work = later(200, 'late', true);
      expect(await within(work, 10)).toBeUndefined();
      await expect(work).rejects.toThrow('late');
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
