import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BrokerEvent } from '@everyauth/core';
import { TallyCounter, TallyHistogram, type CounterChild, type HistogramChild } from './tally.js';

/** Prometheus metrics on a registry of this server's own: two servers in one process do not share counters. */
export class Metrics {
  readonly registry = new Registry();
  // Counted on every request: kept by tally.ts, not by prom-client's label children.
  readonly requests = new TallyCounter({
    name: 'everyauth_http_requests_total',
    help: 'HTTP requests by route and status',
    registers: [this.registry],
  });
  readonly latency = new TallyHistogram({
    name: 'everyauth_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly refreshes = new Counter({
    name: 'everyauth_refreshes_total',
    help: 'Token refreshes by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly providerErrors = new Counter({
    name: 'everyauth_provider_errors_total',
    help: 'Errors from providers by service and error code',
    labelNames: ['service', 'error'],
    registers: [this.registry],
  });
  readonly backgroundRefreshes = new Counter({
    name: 'everyauth_background_refreshes_total',
    help: 'Identities this replica took up for refresh ahead of expiry (done: fresh now, by this replica or another), by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly keepAliveRefreshes = new Counter({
    name: 'everyauth_keep_alive_refreshes_total',
    help: "Identities this replica refreshed before their provider's refresh-token idle limit, by outcome",
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'everyauth_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  readonly proxyRequests = new TallyCounter({
    name: 'everyauth_proxy_requests_total',
    help: "Requests through /v1/proxy by service and the status class answered (2xx, 4xx, …), the API's or EveryAuth's own",
    registers: [this.registry],
  });
  readonly proxyLatency = new TallyHistogram({
    name: 'everyauth_proxy_duration_seconds',
    help: 'Time from receiving a /v1/proxy request to the API response header, by service',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  /** Filled at each scrape by {@link countIdentitiesWith}; absent until then. */
  private identities?: Gauge;

  /**
   * Exposes `everyauth_identities{service,status}`, counted from the store at each scrape (one
   * GROUP BY; every replica reports the same totals, so aggregate with max, not sum).
   */
  countIdentitiesWith(count: () => Promise<{ serviceId: string; status: string; count: number }[]>): void {
    this.identities = new Gauge({
      name: 'everyauth_identities',
      help: 'Identities by service and status (the whole store, as this replica sees it)',
      labelNames: ['service', 'status'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const row of await count()) this.set({ service: row.serviceId, status: row.status }, row.count);
      },
    });
  }

  /** Label children by route, so a request finds its counters with one lookup. */
  private readonly routes = new Map<string, { latency: HistogramChild; byStatus: Map<number, CounterChild> }>();

  /** The same for proxied requests, by service. */
  private readonly services = new Map<string, { latency: HistogramChild; byClass: Map<number, CounterChild> }>();

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'everyauth_' });
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route}`;
    let children = this.routes.get(key);
    if (!children) {
      children = { latency: this.latency.labels({ method, route }), byStatus: new Map() };
      this.routes.set(key, children);
    }
    let counter = children.byStatus.get(status);
    if (!counter) {
      counter = this.requests.labels({ method, route, status });
      children.byStatus.set(status, counter);
    }
    counter.inc();
    children.latency.observe(seconds);
  }

  /** One proxied request: the status answered (the API's, or EveryAuth's own when it refused or the API failed) and the time to it. */
  observeProxy(service: string, status: number, seconds: number): void {
    let children = this.services.get(service);
    if (!children) {
      children = { latency: this.proxyLatency.labels({ service }), byClass: new Map() };
      this.services.set(service, children);
    }
    const statusClass = Math.floor(status / 100);
    let counter = children.byClass.get(statusClass);
    if (!counter) {
      counter = this.proxyRequests.labels({ service, class: `${statusClass}xx` });
      children.byClass.set(statusClass, counter);
    }
    counter.inc();
    children.latency.observe(seconds);
  }

  /** Refresh outcomes and provider errors, read off the broker's events. */
  observeEvent(event: BrokerEvent): void {
    switch (event.type) {
      case 'identity.refreshed':
        this.refreshes.inc({ outcome: 'refreshed' });
        break;
      case 'identity.refresh_failed':
        this.refreshes.inc({ outcome: 'failed' });
        this.providerErrors.inc({ service: event.serviceId, error: String(event.data.error ?? 'error') });
        break;
      case 'identity.needs_reauth':
        this.refreshes.inc({ outcome: 'needs_reauth' });
        this.providerErrors.inc({ service: event.serviceId, error: String(event.data.error ?? 'invalid_grant') });
        break;
      default:
    }
  }
}
