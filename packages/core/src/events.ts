/**
 * The event log: what happened to identities (created, refreshed, needs re-authorization, …),
 * stored in order and handed to the broker's `onEvent` listener (the server's webhooks and metrics).
 */
import type { Logger } from 'pino';
import type { BrokerEvent, EventType } from './broker.js';
import { newEventId } from './ids.js';
import { isoTime } from './iso-time.js';
import { eventRow, type EventDraft, type EventRow, type IdentityRow, type Store } from './store/store.js';
import * as validate from './validate.js';

/** Called after each event is stored. Errors thrown here are logged, not raised. */
export type EventListener = (event: BrokerEvent) => void | Promise<void>;

export class Events {
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly listener?: EventListener,
  ) {}

  /** Stores an event about `row`'s identity, then tells the listener. */
  async emit(
    type: EventType,
    row: Pick<IdentityRow, 'id' | 'service_id' | 'user_id' | 'tenant_id' | 'tags'>,
    data: Record<string, unknown>,
  ): Promise<void> {
    const event = eventRow(this.draft(type, data), row);
    await this.store.insertEvent(event);
    await this.announce(event);
  }

  /** An event's own fields, for a write that stores it together with its change (a refresh: Store.completeRefresh). */
  draft(type: EventType, data: Record<string, unknown>): EventDraft {
    const at = this.now();
    return { id: newEventId(at), type, data: JSON.stringify(data), at };
  }

  /** Tells the listener of an event once it is stored. */
  async announce(event: EventRow): Promise<void> {
    if (!this.listener) return;
    try {
      await this.listener(toEvent(event));
    } catch (err) {
      this.logger.error({ err, eventId: event.id }, 'event listener failed');
    }
  }

  async list(options: { after?: string; count?: number; identityId?: string } = {}): Promise<BrokerEvent[]> {
    const rows = await this.store.listEvents({
      after: options.after,
      identityId: options.identityId,
      limit: validate.pageCount(options.count),
    });
    return rows.map(toEvent);
  }
}

function toEvent(row: EventRow): BrokerEvent {
  return {
    id: row.id,
    type: row.type as EventType,
    serviceId: row.service_id,
    identityId: row.identity_id,
    userId: row.user_id,
    tenantId: row.tenant_id || undefined,
    tags: row.tags === '{}' ? {} : JSON.parse(row.tags),
    at: isoTime(row.at),
    data: JSON.parse(row.data),
  };
}
