import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TallyCounter, TallyHistogram } from '../src/tally.js';

const buckets = [0.001, 0.01, 0.1, 1];
const observations: [Record<string, string>, number, number][] = [
  [{ method: 'GET', route: '/v1/a' }, 200, 0.0005],
  [{ method: 'GET', route: '/v1/a' }, 200, 0.001], // on a bound: counted in it (le)
  [{ method: 'GET', route: '/v1/a' }, 404, 0.05],
  [{ method: 'POST', route: '/v1/b' }, 201, 2.5], // above every bound: +Inf only
  [{ method: 'GET', route: '/v1/a' }, 200, 0.25],
];

describe('tally metrics', () => {
  it("write the text prom-client's own Counter and Histogram write for the same requests", async () => {
    const theirs = new Registry();
    const counter = new Counter({ name: 'x_requests_total', help: 'h', labelNames: ['method', 'route', 'status'], registers: [theirs] });
    const histogram = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['method', 'route'], buckets, registers: [theirs] });
    const ours = new Registry();
    const tallyCounter = new TallyCounter({ name: 'x_requests_total', help: 'h', registers: [ours] });
    const tallyHistogram = new TallyHistogram({ name: 'x_seconds', help: 'h', buckets, registers: [ours] });
    for (const [labels, status, seconds] of observations) {
      counter.labels({ ...labels, status }).inc();
      histogram.labels(labels).observe(seconds);
      tallyCounter.labels({ ...labels, status }).inc();
      tallyHistogram.labels(labels).observe(seconds);
    }
    const expected = await theirs.metrics();
    expect(expected).toContain('x_seconds_bucket{le="0.001",method="GET",route="/v1/a"} 2');
    expect(await ours.metrics()).toBe(expected);
  });

  it('give the same child for the same labels, so a caller may keep it', () => {
    const tally = new TallyCounter({ name: 'y_total', help: 'h', registers: [] });
    expect(tally.labels({ a: '1', b: 2 })).toBe(tally.labels({ a: '1', b: 2 }));
    expect(tally.labels({ a: '1', b: 2 })).not.toBe(tally.labels({ a: '1', b: 3 }));
  });
});
