import { h, svg } from './dom.js';

const WIDTH = 600;
const HEIGHT = 150;
const PAD = { top: 12, right: 8, bottom: 22, left: 28 };

/** Counts refreshes and failures per minute over the last `minutes`, oldest first. */
export function perMinute(events, minutes, now = Date.now()) {
  const end = Math.floor(now / 60_000);
  const buckets = Array.from({ length: minutes }, () => ({ refreshed: 0, failed: 0 }));
  for (const event of events) {
    const index = minutes - 1 - (end - Math.floor(Date.parse(event.at) / 60_000));
    if (index < 0 || index >= minutes) continue;
    if (event.type === 'identity.refreshed') buckets[index].refreshed += 1;
    else if (event.type === 'identity.refresh_failed' || event.type === 'identity.needs_reauth') buckets[index].failed += 1;
  }
  return buckets;
}

/** Two bars per minute (refreshed, failed) as inline SVG, with a legend and a text summary for screen readers. */
export function refreshChart(events, minutes = 30) {
  const buckets = perMinute(events, minutes);
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.refreshed, b.failed)));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotWidth / minutes;
  const bar = Math.max(1, slot / 2 - 1);
  const y = (value) => PAD.top + plotHeight - (value / max) * plotHeight;

  const bars = buckets.flatMap((bucket, i) => {
    const x = PAD.left + i * slot;
    return [
      bucket.refreshed &&
        svg(
          'rect',
          { class: 'refreshed', x: x + 0.5, y: y(bucket.refreshed), width: bar, height: (bucket.refreshed / max) * plotHeight },
          svg('title', {}, `${bucket.refreshed} refreshed`),
        ),
      bucket.failed &&
        svg(
          'rect',
          { class: 'failed', x: x + 0.5 + bar, y: y(bucket.failed), width: bar, height: (bucket.failed / max) * plotHeight },
          svg('title', {}, `${bucket.failed} failed`),
        ),
    ].filter(Boolean);
  });
  const totals = buckets.reduce((sum, b) => ({ refreshed: sum.refreshed + b.refreshed, failed: sum.failed + b.failed }), {
    refreshed: 0,
    failed: 0,
  });
  const summary = `Last ${minutes} minutes: ${totals.refreshed} refreshed, ${totals.failed} failed.`;

  const chart = svg(
    'svg',
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': summary },
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top + plotHeight, x2: WIDTH - PAD.right, y2: PAD.top + plotHeight }),
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + plotHeight }),
    svg('text', { x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end' }, String(max)),
    svg('text', { x: PAD.left - 4, y: PAD.top + plotHeight, 'text-anchor': 'end' }, '0'),
    svg('text', { x: PAD.left, y: HEIGHT - 6 }, `${minutes} min ago`),
    svg('text', { x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end' }, 'now'),
    ...bars,
  );
  return h(
    'figure',
    { class: 'chart panel', id: 'refresh-chart' },
    h('div', { class: 'row spread' }, h('strong', {}, 'Refreshes per minute'), h('span', { class: 'muted', id: 'chart-summary' }, summary)),
    chart,
    h(
      'div',
      { class: 'legend' },
      h('span', { class: 'refreshed' }, 'refreshed'),
      h('span', { class: 'failed' }, 'failed (refresh error or re-authorization needed)'),
    ),
  );
}
