/**
 * Identity queries: finding one identity by id, user or filter, listing by page, deleting (with
 * revocation at the provider), and the token read itself, which goes one way:
 * store → refresher when due → credentials → the fresh identity.
 */
import type {
  FreshIdentity,
  GetIdentityOptions,
  IdentityFilter,
  IdentitySelector,
  IdentitySummary,
  IdentityUpdate,
  Page,
  PageRequest,
} from './broker.js';
import type { Credentials } from './credentials.js';
import { AmbiguousIdentity, InvalidInput } from './errors.js';
import type { Events } from './events.js';
import { reauthError, toFresh, toSummary } from './identity-rows.js';
import { isIdentityId } from './ids.js';
import { revokeToken } from './oauth/engine.js';
import type { Refresher } from './refresher.js';
import type { Services } from './services.js';
import { isUserLookup, type IdentityListFilter, type IdentityRow, type Store, type TokenRow } from './store/store.js';
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

  /**
   * The token read: the token columns of the row, with its tokens opened. A token that is due is
   * refreshed first (within the read deadline), from the whole row, read again for it.
   */
  async get(serviceId: string, selector: IdentitySelector, options: GetIdentityOptions = {}): Promise<FreshIdentity | undefined> {
    const row = await this.locate(serviceId, selector, this.readers.token);
    if (!row) return undefined;
    if (row.status !== 'active') throw reauthError(row);
    if (!options.force && !this.refresher.needsRefresh(row)) return toFresh(row, this.credentials.openTokens(row));
    // A refresh is fenced on the row's version and lease and answers from its recorded failures.
    const whole = await this.store.getIdentity(row.id);
    if (!whole) return undefined;
    const refreshed = await this.refresher.read(whole, options);
    return toFresh(refreshed, this.credentials.openTokens(refreshed));
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
  findRow(serviceId: string, selector: IdentitySelector): Promise<IdentityRow | undefined> {
    return this.locate(serviceId, selector, this.readers.whole);
  }

  /** How a lookup reads rows: whole, or the token columns alone (the token read). Made once: the token read is hot. */
  private readonly readers = {
    whole: {
      byId: (id: string) => this.store.getIdentity(id),
      find: (filter: IdentityListFilter) => this.store.findIdentities(filter, 2),
    } satisfies RowReader<IdentityRow>,
    token: {
      byId: (id: string) => this.store.getTokenRow(id),
      find: (filter: IdentityListFilter): Promise<TokenRow[]> =>
        isUserLookup(filter, 2)
          ? this.store.findTokenRows(filter.serviceId!, filter.userId!, filter.tenantId)
          : this.store.findIdentities(filter, 2),
    } satisfies RowReader<TokenRow>,
  };

  private async locate<R extends TokenRow>(serviceId: string, selector: IdentitySelector, read: RowReader<R>): Promise<R | undefined> {
    validate.serviceId(serviceId);
    // The token-read path: a plain id is only ever a bound parameter, so it needs no more than the
    // text check (NUL breaks PostgreSQL; a lone surrogate would match another user's U+FFFD).
    if (typeof selector === 'string' && selector.length > 0) {
      validate.lookupId(selector);
      if (isIdentityId(selector)) {
        const row = await read.byId(selector);
        return row?.service_id === serviceId ? row : undefined;
      }
      return theOne(serviceId, await read.find({ serviceId, userId: selector }));
    }
    const filter = validate.identityFilter(typeof selector === 'string' ? { userId: selector } : selector);
    if (validate.isEmptyFilter(filter))
      throw new InvalidInput('Name the identity: an identity id, a userId, or a filter with userId, tenantId or tags.', 'selector');
    return theOne(serviceId, await read.find({ ...filter, serviceId }));
  }

  private async revoke(row: IdentityRow): Promise<void> {
    const ctx = await this.services.context(await this.services.row(row.service_id));
    const tokens = this.credentials.openTokens(row);
    // Revoking the refresh token ends the whole grant at providers that follow RFC 7009 §2.1.
    if (tokens.refreshToken) await revokeToken(ctx, tokens.refreshToken, 'refresh_token');
    else await revokeToken(ctx, tokens.accessToken, 'access_token');
  }
}

/** Reads a row by id, or up to two by a filter, for a lookup that must find one. */
interface RowReader<R> {
  byId(id: string): Promise<R | undefined>;
  find(filter: IdentityListFilter): Promise<R[]>;
}

/** The one row of a lookup; two mean the selector names identities under several tenants. */
function theOne<R>(serviceId: string, rows: R[]): R | undefined {
  if (rows.length > 1) throw new AmbiguousIdentity(serviceId, rows.length);
  return rows[0];
}

const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');

function decodeCursor(next: string): string {
  const id = Buffer.from(next, 'base64url').toString();
  if (!isIdentityId(id)) throw new InvalidInput('next is not a cursor from a previous page.', 'next');
  return id;
}
