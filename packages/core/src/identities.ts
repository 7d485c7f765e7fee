/**
 * Identity queries: finding one identity by id, user or filter, listing by page, deleting (with
 * revocation at the provider), and the token read itself, which goes one way:
 * store → refresher when due → credentials → the fresh identity.
 */
import type { FreshIdentity, IdentityFilter, IdentitySelector, IdentitySummary, IdentityUpdate, Page, PageRequest } from './broker.js';
import type { Credentials } from './credentials.js';
import { AmbiguousIdentity, InvalidInput } from './errors.js';
import type { Events } from './events.js';
import { reauthError, toFresh, toSummary } from './identity-rows.js';
import { isIdentityId } from './ids.js';
import { revokeToken } from './oauth/engine.js';
import type { Refresher } from './refresher.js';
import type { Services } from './services.js';
import type { IdentityRow, Store } from './store/store.js';
import * as validate from './validate.js';

export class Identities {
  constructor(
    private readonly store: Store,
    private readonly credentials: Credentials,
    private readonly services: Services,
    private readonly refresher: Refresher,
    private readonly events: Events,
    private readonly now: () => number = Date.now,
  ) {}

  /** The token read: the row, refreshed first when its token is due, with its tokens opened. */
  async get(serviceId: string, selector: IdentitySelector, force = false): Promise<FreshIdentity | undefined> {
    let row = await this.findRow(serviceId, selector);
    if (!row) return undefined;
    if (row.status !== 'active') throw reauthError(row);
    if (force || this.refresher.needsRefresh(row)) row = await this.refresher.refresh(row, force);
    return toFresh(row, this.credentials.openTokens(row));
  }

  async find(serviceId: string, selector: IdentitySelector): Promise<IdentitySummary | undefined> {
    const row = await this.findRow(serviceId, selector);
    return row && toSummary(row);
  }

  /** One identity by id alone, whatever its service; undefined when there is none. */
  async findById(identityId: string): Promise<IdentitySummary | undefined> {
    const row = await this.store.getIdentity(identityId);
    return row && toSummary(row);
  }

  async list(serviceId: string | undefined, filter?: IdentityFilter, page: PageRequest = {}): Promise<Page<IdentitySummary>> {
    const count = validate.pageCount(page.count);
    const after = page.next === undefined ? undefined : decodeCursor(page.next);
    const rows = await this.store.listIdentities(
      { ...validate.identityFilter(filter), ...(serviceId === undefined ? {} : { serviceId: validate.serviceId(serviceId) }) },
      after,
      count + 1,
    );
    const items = rows.slice(0, count).map(toSummary);
    return rows.length > count ? { items, next: encodeCursor(items[items.length - 1]!.id) } : { items };
  }

  async delete(identityId: string, options: { revoke?: boolean } = {}): Promise<boolean> {
    const row = await this.store.getIdentity(validate.lookupId(identityId));
    if (!row) return false;
    if (options.revoke) await this.revoke(row);
    const deleted = await this.store.deleteIdentity(row.id);
    if (deleted) await this.events.emit('identity.deleted', row, { revoked: options.revoke === true });
    return deleted;
  }

  /** Replaces tags and/or metadata; the tokens, status and id stay. */
  async update(identityId: string, update: IdentityUpdate): Promise<IdentitySummary | undefined> {
    const id = validate.lookupId(identityId);
    if (!update || typeof update !== 'object' || (update.tags === undefined && update.metadata === undefined))
      throw new InvalidInput('Give tags, metadata or both to change.', 'update');
    const fields = {
      ...(update.tags !== undefined ? { tags: validate.tags(update.tags) } : {}),
      ...(update.metadata !== undefined ? { metadata: validate.metadata(update.metadata) } : {}),
    };
    const row = await this.store.updateIdentityFields(id, fields, this.now());
    if (!row) return undefined;
    await this.events.emit('identity.updated', row, { changed: Object.keys(fields) });
    return toSummary(row);
  }

  async deleteMany(serviceId: string, filter: IdentityFilter | null, options: { revoke?: boolean } = {}): Promise<number> {
    const checked = filter === null ? {} : validate.identityFilter(filter);
    if (filter !== null && validate.isEmptyFilter(checked)) {
      throw new InvalidInput('An empty filter would delete every identity of the service; pass null to mean that explicitly.', 'filter');
    }
    let deleted = 0;
    for (;;) {
      const rows = await this.store.listIdentities({ ...checked, serviceId: validate.serviceId(serviceId) }, undefined, 500);
      if (rows.length === 0) return deleted;
      for (const row of rows) if (await this.delete(row.id, options)) deleted++;
    }
  }

  /** The one row the selector names, unopened; undefined when none matches, AmbiguousIdentity when several do. */
  async findRow(serviceId: string, selector: IdentitySelector): Promise<IdentityRow | undefined> {
    validate.serviceId(serviceId);
    // The token-read path: a plain id is only ever a bound parameter, so it needs no more than the
    // text check (NUL breaks PostgreSQL; a lone surrogate would match another user's U+FFFD).
    if (typeof selector === 'string' && selector.length > 0) {
      validate.lookupId(selector);
      if (isIdentityId(selector)) {
        const row = await this.store.getIdentity(selector);
        return row?.service_id === serviceId ? row : undefined;
      }
      const rows = await this.store.findIdentities({ serviceId, userId: selector }, 2);
      if (rows.length > 1) throw new AmbiguousIdentity(serviceId, rows.length);
      return rows[0];
    }
    const filter = validate.identityFilter(typeof selector === 'string' ? { userId: selector } : selector);
    if (validate.isEmptyFilter(filter))
      throw new InvalidInput('Name the identity: an identity id, a userId, or a filter with userId, tenantId or tags.', 'selector');
    const rows = await this.store.findIdentities({ ...filter, serviceId }, 2);
    if (rows.length > 1) throw new AmbiguousIdentity(serviceId, rows.length);
    return rows[0];
  }

  private async revoke(row: IdentityRow): Promise<void> {
    const ctx = await this.services.context(await this.services.row(row.service_id));
    const tokens = this.credentials.openTokens(row);
    // Revoking the refresh token ends the whole grant at providers that follow RFC 7009 §2.1.
    if (tokens.refreshToken) await revokeToken(ctx, tokens.refreshToken, 'refresh_token');
    else await revokeToken(ctx, tokens.accessToken, 'access_token');
  }
}

const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');

function decodeCursor(next: string): string {
  const id = Buffer.from(next, 'base64url').toString();
  if (!isIdentityId(id)) throw new InvalidInput('next is not a cursor from a previous page.', 'next');
  return id;
}
