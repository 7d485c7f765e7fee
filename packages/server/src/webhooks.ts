import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import {
  backoffDelay,
  EVENT_TYPES,
  InvalidInput,
  ScheduledLoop,
  sealedLabel,
  sortableId,
  type BrokerEvent,
  type EventType,
  type Store,
  type Vault,
} from '@everyauth/core';
import { DeliveryNotFailed, DeliveryNotFound, WebhookNotFound } from './errors.js';
import type { Metrics } from './metrics.js';
import { serverDb, type DeliveryStatus, type WebhookDeliveryTable } from './tables.js';

/** Every event type a webhook may subscribe to (all of them by default). */
export const WEBHOOK_EVENTS: readonly EventType[] = EVENT_TYPES;

export interface WebhookOptions {
  /** Attempts per delivery, the first included (default 8). */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt with jitter, capped at maxDelayMs (defaults 1 s, 10 min). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How often each replica looks for due deliveries (default 1 s). */
  pollMs?: number;
  /** Timeout of one POST (default 10 s). */
  timeoutMs?: number;
  /** Days a delivered or failed delivery is kept, for the log and replays (default 14). */
  retentionDays?: number;
  /**
   * How long the list of webhooks that events are matched against is kept (default 1 s; 0 reads it
   * for every event). A webhook created or deleted through this replica applies at once; through
   * another replica, within this long.
   */
  subscriptionsCacheMs?: number;
}

/**
 * The JSON body of a delivery: the event (id, type, identity id, service, user, tenant, tags, time,
 * data) plus `idempotencyKey`, the event's id — the same across retries, replays and every webhook
 * that receives the event, so a receiver that stores it can drop repeats (delivery is at least
 * once) — and `deliveryId`, naming this delivery to this webhook.
 */
export type WebhookPayload = BrokerEvent & { deliveryId: string; idempotencyKey: string };

export interface Webhook {
  id: string;
  url: string;
  events: EventType[];
  createdAt: string;
}

export interface WebhookDelivery {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt?: string;
  responseStatus?: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
}

export const SIGNATURE_HEADER = 'everyauth-signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed too, so a captured delivery cannot be replayed later. */
export function signWebhook(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** For receivers: whether the header signs this body, within `toleranceSec` of now. */
export function verifyWebhookSignature(secret: string, header: string, body: string, toleranceSec = 300, now = Date.now()): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > toleranceSec || typeof parts.v1 !== 'string') return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1]!, 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const LEASE_MS = 60_000;

/**
 * Signed webhook POSTs with retries. Each event becomes one delivery row per subscribed webhook;
 * every replica polls for due rows and claims each with a conditional UPDATE, so a delivery is
 * attempted by one replica at a time and survives a replica's death (its lease lapses).
 */
export class Webhooks {
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly owner = randomBytes(8).toString('hex');
  private readonly poller: ScheduledLoop;
  private readonly retentionMs: number;
  private readonly subscriptionsCacheMs: number;
  /** The webhooks as last read for matching events, and when that read started (`performance.now()`). */
  private subscriptions?: { readAt: number; webhooks: Promise<Webhook[]> };
  private lastPrune = 0;

  constructor(
    private readonly store: Store,
    private readonly vault: Vault,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    options: WebhookOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 8;
    this.baseDelayMs = options.baseDelayMs ?? 1_000;
    this.maxDelayMs = options.maxDelayMs ?? 10 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retentionMs = (options.retentionDays ?? 14) * 24 * 3600_000;
    this.subscriptionsCacheMs = options.subscriptionsCacheMs ?? 1_000;
    this.poller = new ScheduledLoop({
      intervalMs: options.pollMs ?? 1_000,
      run: () => this.runDue(),
      onError: (err) => this.logger.warn({ err: { message: (err as Error).message } }, 'webhook poll failed'),
    });
  }

  private get db() {
    return serverDb(this.store);
  }

  // ---- management ----

  async create(input: { url: string; events?: EventType[] }): Promise<{ webhook: Webhook; secret: string }> {
    const url = checkUrl(input.url);
    const events = input.events && input.events.length > 0 ? [...new Set(input.events)] : [...WEBHOOK_EVENTS];
    for (const e of events) if (!WEBHOOK_EVENTS.includes(e)) throw new InvalidInput(`Unknown event type "${e}".`, 'events');
    const id = sortableId('whk_');
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    const now = Date.now();
    await this.db
      .insertInto('webhooks')
      .values({ id, url, secret: this.vault.seal(secret, sealedLabel.webhook(id)), events: JSON.stringify(events), created_at: now })
      .execute();
    this.subscriptions = undefined;
    return { webhook: { id, url, events, createdAt: new Date(now).toISOString() }, secret };
  }

  async list(): Promise<Webhook[]> {
    const rows = await this.db.selectFrom('webhooks').select(['id', 'url', 'events', 'created_at']).orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, url: r.url, events: JSON.parse(r.events), createdAt: new Date(r.created_at).toISOString() }));
  }

  async get(id: string): Promise<Webhook> {
    const found = (await this.list()).find((w) => w.id === id);
    if (!found) throw new WebhookNotFound(id);
    return found;
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
      const r = await trx.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
    this.subscriptions = undefined;
    return deleted;
  }

  async deliveries(webhookId: string, options: { after?: string; count?: number } = {}): Promise<WebhookDelivery[]> {
    let q = this.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId);
    if (options.after) q = q.where('id', '>', options.after);
    const rows = await q
      .orderBy('id')
      .limit(options.count ?? 100)
      .execute();
    return rows.map(toDelivery);
  }

  // ---- delivery ----

  /** Records one delivery per webhook subscribed to the event; the poller sends them. */
  async enqueue(event: BrokerEvent): Promise<void> {
    const hooks = (await this.subscribed()).filter((w) => w.events.includes(event.type));
    if (hooks.length === 0) return;
    const now = Date.now();
    await this.db
      .insertInto('webhook_deliveries')
      .values(
        hooks.map((w) => {
          const id = sortableId('dlv_', now);
          return {
            id,
            webhook_id: w.id,
            event_id: event.id,
            event_type: event.type,
            payload: JSON.stringify(payloadOf(id, event)),
            status: 'pending' as const,
            attempts: 0,
            next_attempt_at: now,
            lease_owner: null,
            lease_until: null,
            response_status: null,
            last_error: null,
            created_at: now,
            updated_at: now,
          };
        }),
      )
      .execute();
    this.poller.kick();
  }

  /**
   * Sends a failed delivery again: the same delivery id and idempotency key, its attempts counted
   * afresh. A delivery still pending is already being retried; one delivered needs no replay.
   */
  async replay(webhookId: string, deliveryId: string): Promise<WebhookDelivery> {
    const now = Date.now();
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', attempts: 0, next_attempt_at: now, lease_owner: null, lease_until: null, updated_at: now })
      .where('id', '=', deliveryId)
      .where('webhook_id', '=', webhookId)
      .where('status', '=', 'failed')
      .executeTakeFirst();
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', deliveryId)
      .where('webhook_id', '=', webhookId)
      .executeTakeFirst();
    if (!row) throw new DeliveryNotFound(webhookId, deliveryId);
    if (Number(r.numUpdatedRows) === 0) throw new DeliveryNotFailed(deliveryId, row.status);
    this.poller.kick();
    return toDelivery(row);
  }

  /**
   * The webhooks events are matched against: read at most once per `subscriptionsCacheMs`, so a
   * burst of events (a refresh storm: hundreds a second) costs no statement each. Events arriving
   * while it is read wait for the same read; a failed read is not kept. Timed on the monotonic
   * clock: a wall clock set back would keep the list until it caught up.
   */
  private subscribed(): Promise<Webhook[]> {
    const now = performance.now();
    if (this.subscriptions === undefined || now - this.subscriptions.readAt >= this.subscriptionsCacheMs) {
      const webhooks = this.list();
      const read = { readAt: now, webhooks };
      this.subscriptions = read;
      webhooks.catch(() => {
        if (this.subscriptions === read) this.subscriptions = undefined;
      });
    }
    return this.subscriptions.webhooks;
  }

  /**
   * Deletes delivered and failed deliveries older than the retention, and deliveries whose webhook
   * is gone (another replica may still have matched an event to it in the moment after the delete,
   * within `subscriptionsCacheMs`; such a delivery is never sent); returns how many.
   */
  async prune(now = Date.now()): Promise<number> {
    const r = await this.db
      .deleteFrom('webhook_deliveries')
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '!=', 'pending'), eb('created_at', '<', now - this.retentionMs)]),
          eb.not(eb.exists(eb.selectFrom('webhooks').select('webhooks.id').whereRef('webhooks.id', '=', 'webhook_deliveries.webhook_id'))),
        ]),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  start(): void {
    this.poller.start();
  }

  /** Stops polling and waits for the deliveries in flight. */
  stop(): Promise<void> {
    return this.poller.stop();
  }

  private async runDue(): Promise<void> {
    const now = Date.now();
    // Pruning rides on the poller, at most hourly per replica; deletes are idempotent, so replicas may overlap.
    if (now - this.lastPrune >= 3600_000) {
      this.lastPrune = now;
      await this.prune(now);
    }
    const due = await this.db
      .selectFrom('webhook_deliveries')
      .innerJoin('webhooks', 'webhooks.id', 'webhook_deliveries.webhook_id')
      .select([
        'webhook_deliveries.id',
        'webhook_deliveries.webhook_id',
        'webhook_deliveries.payload',
        'webhook_deliveries.attempts',
        'webhook_deliveries.event_type',
        'webhook_deliveries.event_id',
        'webhooks.url',
        'webhooks.secret',
      ])
      .where('webhook_deliveries.status', '=', 'pending')
      .where('webhook_deliveries.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('webhook_deliveries.lease_until', 'is', null), eb('webhook_deliveries.lease_until', '<=', now)]))
      .orderBy('webhook_deliveries.next_attempt_at')
      .limit(20)
      .execute();
    await Promise.all(
      due.map(async (d) => {
        if (!(await this.claim(d.id, now))) return;
        await this.attempt(d);
      }),
    );
  }

  private async claim(id: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set({ lease_owner: this.owner, lease_until: now + LEASE_MS })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  private async attempt(d: {
    id: string;
    webhook_id: string;
    payload: string;
    attempts: number;
    event_type: string;
    event_id: string;
    url: string;
    secret: string;
  }): Promise<void> {
    const attempts = d.attempts + 1;
    let responseStatus: number | null = null;
    let error: string | null = null;
    try {
      const secret = this.vault.open(d.secret, sealedLabel.webhook(d.webhook_id));
      const response = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signWebhook(secret, d.payload),
          'everyauth-event': d.event_type,
          'everyauth-delivery': d.id,
          'everyauth-idempotency-key': d.event_id,
        },
        body: d.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      responseStatus = response.status;
      await response.body?.cancel();
      if (!response.ok) error = `HTTP ${response.status}`;
    } catch (err) {
      error = (err as Error).name === 'TimeoutError' ? 'timed out' : `network error: ${(err as Error).message}`;
    }
    const now = Date.now();
    const status: DeliveryStatus = error === null ? 'delivered' : attempts >= this.maxAttempts ? 'failed' : 'pending';
    this.metrics.webhookDeliveries.inc({ outcome: error === null ? 'delivered' : status === 'failed' ? 'failed' : 'retry' });
    if (error !== null) this.logger.warn({ deliveryId: d.id, webhookId: d.webhook_id, attempts, error }, 'webhook delivery failed');
    await this.db
      .updateTable('webhook_deliveries')
      .set({
        status,
        attempts,
        response_status: responseStatus,
        last_error: error,
        next_attempt_at: status === 'pending' ? now + backoffDelay(attempts, { baseMs: this.baseDelayMs, maxMs: this.maxDelayMs }) : now,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
      })
      .where('id', '=', d.id)
      .where('lease_owner', '=', this.owner)
      .execute();
  }
}

function payloadOf(deliveryId: string, event: BrokerEvent): WebhookPayload {
  return { ...event, idempotencyKey: event.id, deliveryId };
}

function checkUrl(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new InvalidInput('url must be an absolute http(s) URL.', 'url');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
    throw new InvalidInput('url must be an http(s) URL without credentials.', 'url');
  }
  return url.href;
}

function toDelivery(r: WebhookDeliveryTable): WebhookDelivery {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    eventId: r.event_id,
    eventType: r.event_type,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'pending' ? new Date(r.next_attempt_at).toISOString() : undefined,
    responseStatus: r.response_status ?? undefined,
    lastError: r.last_error ?? undefined,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}
