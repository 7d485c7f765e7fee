import { describe, expect, it } from 'vitest';
import { ScheduledLoop } from '../src/loop.js';
import { backoffDelay, retry, sleep } from '../src/retry.js';

describe('backoffDelay', () => {
  it('doubles per attempt, stays between half and all of the step, and never passes the cap', () => {
    for (let i = 0; i < 200; i++) {
      expect(backoffDelay(1, { baseMs: 100, maxMs: 1_000 })).toBeGreaterThanOrEqual(50);
      expect(backoffDelay(1, { baseMs: 100, maxMs: 1_000 })).toBeLessThanOrEqual(100);
      const third = backoffDelay(3, { baseMs: 100, maxMs: 1_000 });
      expect(third).toBeGreaterThanOrEqual(200);
      expect(third).toBeLessThanOrEqual(400);
      expect(backoffDelay(20, { baseMs: 100, maxMs: 1_000 })).toBeLessThanOrEqual(1_000);
      expect(backoffDelay(20, { baseMs: 100, maxMs: 1_000 })).toBeGreaterThanOrEqual(500);
    }
  });
});

describe('retry', () => {
  it('retries while delayMs gives a delay, and returns the first success', async () => {
    const seen: number[] = [];
    const result = await retry(
      async (n) => {
        seen.push(n);
        if (n < 3) throw new Error(`attempt ${n}`);
        return 'done';
      },
      { delayMs: () => 1 },
    );
    expect(result).toBe('done');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('throws the error delayMs gives up on, after telling onRetry of each retry', async () => {
    const retried: [string, number, number][] = [];
    const attempt = async (n: number) => {
      throw new Error(`attempt ${n}`);
    };
    await expect(
      retry(attempt, {
        delayMs: (_e, n) => (n < 2 ? 3 : undefined),
        onRetry: (e, n, d) => retried.push([(e as Error).message, n, d]),
      }),
    ).rejects.toThrow('attempt 2');
    expect(retried).toEqual([['attempt 1', 1, 3]]);
  });

  it('ends with what beforeNextAttempt throws, without another attempt', async () => {
    let attempts = 0;
    const stop = new Error('lease lost');
    await expect(
      retry(
        async () => {
          attempts++;
          throw new Error('provider down');
        },
        {
          delayMs: () => 1,
          beforeNextAttempt: async () => {
            throw stop;
          },
        },
      ),
    ).rejects.toBe(stop);
    expect(attempts).toBe(1);
  });
});

describe('ScheduledLoop', () => {
  it('runs repeatedly once started, one run at a time, and stop() waits for the run under way', async () => {
    let running = 0;
    let overlapped = false;
    let runs = 0;
    let finished = 0;
    const loop = new ScheduledLoop({
      intervalMs: 5,
      run: async () => {
        overlapped ||= running > 0;
        running++;
        runs++;
        await sleep(15);
        running--;
        finished++;
      },
      onError: () => undefined,
    });
    loop.kick(); // not started: nothing runs
    await sleep(20);
    expect(runs).toBe(0);
    loop.start();
    loop.kick();
    loop.kick();
    await sleep(80);
    await loop.stop();
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(finished).toBe(runs);
    expect(overlapped).toBe(false);
    expect(loop.isStopped).toBe(true);
    const after = runs;
    await sleep(30);
    expect(runs).toBe(after);
  });

  it('passes a failed run to onError and goes on', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const loop = new ScheduledLoop({
      intervalMs: 2,
      run: async () => {
        runs++;
        throw new Error(`run ${runs}`);
      },
      onError: (e) => errors.push(e),
    });
    loop.start();
    await sleep(40);
    await loop.stop();
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(errors.length).toBe(runs);
  });
});
