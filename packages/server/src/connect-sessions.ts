/**
 * Connect sessions: a short-lived link an app makes for one of its users, leading to a page that
 * lists the services the app allows with their state for that user and connects or reconnects
 * them. The link is bound to the first browser that opens it (a cookie whose hash the row keeps),
 * works until it expires or the user finishes, and is refused everywhere else.
 */
import { InvalidInput, NotFound, randomToken, sha256, type LocalBroker, type Store, type Tags } from '@everyauth/core';
import { serverDb, type ConnectSessionTable } from './tables.js';

export const CONNECT_DEFAULT_LIFETIME_MINUTES = 30;
export const CONNECT_MAX_LIFETIME_MINUTES = 24 * 60;

export interface ConnectSessionInput {
  userId: string;
  tenantId?: string;
  tags?: Tags;
  /** The services the page offers, in this order. */
  allowedServices: string[];
  /** Where "Done" sends the user; a relative path or an allow-listed origin. */
  finishedUrl?: string;
  /** 1 to 1,440 (a day); default 30. */
  lifetimeMinutes?: number;
}

export interface ConnectSession {
  userId: string;
  tenantId?: string;
  tags: Tags;
  allowedServices: string[];
  finishedUrl?: string;
  expiresAt: number;
}

/** Why a link cannot be used, each with a page of its own. */
export type ConnectRefusal = 'unknown' | 'expired' | 'finished' | 'other_browser';

export type ConnectOpen = { ok: true; session: ConnectSession; binding?: string } | { ok: false; reason: ConnectRefusal };

export class ConnectSessions {
  private lastPrune = 0;

  constructor(
    private readonly store: Store,
    private readonly broker: LocalBroker,
  ) {}

  private get db() {
    return serverDb(this.store);
  }

  /** Validates the input (services exist, finishedUrl allowed) and stores the link; returns its token. */
  async create(input: ConnectSessionInput, now = Date.now()): Promise<{ token: string; expiresAt: number }> {
    const lifetime = input.lifetimeMinutes ?? CONNECT_DEFAULT_LIFETIME_MINUTES;
    if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > CONNECT_MAX_LIFETIME_MINUTES)
      throw new InvalidInput(
        `lifetimeMinutes must be a whole number from 1 to ${CONNECT_MAX_LIFETIME_MINUTES} (a day).`,
        'lifetimeMinutes',
      );
    const services = [...new Set(input.allowedServices)];
    if (services.length === 0) throw new InvalidInput('allowedServices must name at least one service.', 'allowedServices');
    for (const id of services) {
      await this.broker.getService(id).catch((err: unknown) => {
        if (err instanceof NotFound)
          throw new InvalidInput(`allowedServices names "${id}", which is not a service here.`, 'allowedServices');
        throw err;
      });
    }
    const finishedUrl = input.finishedUrl === undefined ? null : this.broker.checkFinishedUrl(input.finishedUrl);
    const token = `cs_${randomToken()}`;
    const expiresAt = now + lifetime * 60_000;
    await this.db
      .insertInto('connect_sessions')
      .values({
        token_hash: sha256(token),
        user_id: input.userId,
        tenant_id: input.tenantId ?? '',
        tags: JSON.stringify(input.tags ?? {}),
        allowed_services: JSON.stringify(services),
        finished_url: finishedUrl,
        browser_binding: null,
        expires_at: expiresAt,
        finished_at: null,
        created_at: now,
      })
      .execute();
    this.prune(now);
    return { token, expiresAt };
  }

  /**
   * Opens the link for a browser presenting `cookie` (its binding secret, if it has one). The first
   * browser without one claims the link: the returned `binding` is its new secret, to set as a cookie.
   */
  async open(token: string, cookie: string | undefined, now = Date.now()): Promise<ConnectOpen> {
    const hash = sha256(token);
    const row = await this.db.selectFrom('connect_sessions').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.finished_at !== null) return { ok: false, reason: 'finished' };
    if (Number(row.expires_at) <= now) return { ok: false, reason: 'expired' };
    if (row.browser_binding !== null) {
      return cookie && sha256(cookie) === row.browser_binding
        ? { ok: true, session: toSession(row) }
        : { ok: false, reason: 'other_browser' };
    }
    // The first browser: claimed by a conditional UPDATE, so two browsers racing cannot both win.
    const binding = randomToken();
    const claimed = await this.db
      .updateTable('connect_sessions')
      .set({ browser_binding: sha256(binding) })
      .where('token_hash', '=', hash)
      .where('browser_binding', 'is', null)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return { ok: false, reason: 'other_browser' };
    return { ok: true, session: toSession(row), binding };
  }

  /** Marks the link used up: from now on it opens nowhere. */
  async finish(token: string, now = Date.now()): Promise<void> {
    await this.db.updateTable('connect_sessions').set({ finished_at: now }).where('token_hash', '=', sha256(token)).execute();
  }

  /** Deletes links expired for a day (the day keeps "expired" apart from "unknown" on the page), at most every 10 minutes, off the request's path. */
  private prune(now: number): void {
    if (now - this.lastPrune < 10 * 60_000) return;
    this.lastPrune = now;
    void this.db
      .deleteFrom('connect_sessions')
      .where('expires_at', '<', now - 24 * 3600_000)
      .execute()
      .catch(() => undefined);
  }
}

function toSession(row: ConnectSessionTable): ConnectSession {
  return {
    userId: row.user_id,
    tenantId: row.tenant_id === '' ? undefined : row.tenant_id,
    tags: JSON.parse(row.tags) as Tags,
    allowedServices: JSON.parse(row.allowed_services) as string[],
    finishedUrl: row.finished_url ?? undefined,
    expiresAt: Number(row.expires_at),
  };
}
