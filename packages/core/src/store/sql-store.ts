import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import { InvalidInput } from '../errors.js';
import { leaseHolderGone } from '../lease-holder.js';
import { migrationProvider, runMigrations } from './migrations/index.js';
import type { Database } from './schema.js';
import type { Tags } from '../broker.js';
import {
  LISTED_COLUMNS,
  TOKEN_COLUMNS,
  type AuthSessionRow,
  type EventDraft,
  type EventRow,
  type IdentityListFilter,
  type IdentityRow,
  type IdentityWrite,
  type LeaseClaim,
  type ListedIdentityRow,
  type ProviderRow,
  type RefreshFailed,
  type RefreshWrite,
  type ServiceRow,
  type SessionTake,
  type Store,
  type TokenRow,
} from './store.js';
import { eventRow } from './store.js';

/** New tokens end a run of failures. */
const NO_FAILURE = { refresh_failed_at: null, refresh_failure: null, refresh_retry_at: null, refresh_failures: 0 } as const;

/** The token read's SELECT list, for the backends' prepared statements. */
export const SELECT_TOKEN_ROW = `SELECT ${TOKEN_COLUMNS.join(', ')} FROM identities`;

/**
 * An update's `updated_at`: `now`, or one more than the stored value when that is not older, so
 * that it changes on every write and serves as the row's version (client contexts are cached by it).
 */
const nextVersion = (table: 'providers' | 'services', now: number) =>
  sql<number>`CASE WHEN ${sql.ref(`${table}.updated_at`)} >= ${now} THEN ${sql.ref(`${table}.updated_at`)} + 1 ELSE ${now} END`;

/** A claim's UPDATE … RETURNING row; all null (a LEFT JOIN's) when nothing was claimed. */
export type ClaimedRow = IdentityRow & { service_version: number | null; provider_version: number | null };

/** A claim's returned row, split into the row and the versions read with it. */
export function leaseClaim(r: ClaimedRow | undefined): LeaseClaim | undefined {
  if (!r?.id) return undefined;
  const { service_version, provider_version, ...row } = r;
  return { row, serviceVersion: service_version, providerVersion: provider_version };
}

/**
 * The Store in SQL that SQLite and PostgreSQL both run, over Kysely. The backends (sqlite.ts,
 * postgres.ts) extend it with their connection set-up and their prepared token-read statements.
 */
export class SqlStore implements Store {
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: 'sqlite' | 'postgres',
    private readonly onClose: () => Promise<void> = async () => db.destroy(),
  ) {}

  migrate(): Promise<void> {
    return runMigrations(this.db, migrationProvider);
  }

  close(): Promise<void> {
    return this.onClose();
  }

  // ---- providers (custom) ----

  async putProvider(id: string, definition: string, now: number): Promise<void> {
    await this.db
      .insertInto('providers')
      .values({ id, definition, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ definition, updated_at: nextVersion('providers', now) }))
      .execute();
  }

  getProvider(id: string): Promise<ProviderRow | undefined> {
    return this.db.selectFrom('providers').selectAll().where('id', '=', id).executeTakeFirst();
  }

  listProviders(): Promise<ProviderRow[]> {
    return this.db.selectFrom('providers').selectAll().orderBy('id').execute();
  }

  async deleteProvider(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('providers').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // ---- services ----

  async putService(row: ServiceRow): Promise<void> {
    const { id: _id, created_at: _created, ...update } = row;
    await this.db
      .insertInto('services')
      .values(row)
      .onConflict((oc) => oc.column('id').doUpdateSet({ ...update, updated_at: nextVersion('services', row.updated_at) }))
      .execute();
  }

  getService(id: string): Promise<ServiceRow | undefined> {
    return this.db.selectFrom('services').selectAll().where('id', '=', id).executeTakeFirst();
  }

  listServices(): Promise<ServiceRow[]> {
    return this.db.selectFrom('services').selectAll().orderBy('id').execute();
  }

  countServicesUsingProvider(providerId: string): Promise<number> {
    return this.db
      .selectFrom('services')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('provider_id', '=', providerId)
      .executeTakeFirstOrThrow()
      .then((r) => Number(r.n));
  }

  /** Deletes the service with its identities and pending sessions. */
  async deleteService(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('auth_sessions').where('service_id', '=', id).execute();
      await trx
        .deleteFrom('identity_tags')
        .where('identity_id', 'in', trx.selectFrom('identities').select('id').where('service_id', '=', id))
        .execute();
      await trx.deleteFrom('identities').where('service_id', '=', id).execute();
      const r = await trx.deleteFrom('services').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  // ---- authorization sessions ----

  async insertSession(row: AuthSessionRow): Promise<void> {
    await this.db.insertInto('auth_sessions').values(row).execute();
  }

  /** Marks the session used, once: a second take of the same state reports `used`. */
  async takeSession(stateHash: string, now: number): Promise<SessionTake> {
    const taken = await this.db
      .updateTable('auth_sessions')
      .set({ used_at: now })
      .where('state_hash', '=', stateHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    const row = await this.db.selectFrom('auth_sessions').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' };
    if (Number(taken.numUpdatedRows) === 1) return { ok: true, session: row };
    return { ok: false, reason: row.used_at !== null ? 'used' : 'expired' };
  }

  async pruneSessions(before: number): Promise<number> {
    const r = await this.db.deleteFrom('auth_sessions').where('expires_at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  // ---- identities ----

  async getIdentity(id: string): Promise<IdentityRow | undefined> {
    return this.db.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Stores a grant: a new identity, or new tokens on the existing (service, tenant, user) one, which
   * keeps its id. Returns the row and whether it was created.
   */
  async upsertIdentity(write: IdentityWrite, newId: () => string, now: number): Promise<{ row: IdentityRow; created: boolean }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await this.db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom('identities')
          .select(['id', 'version'])
          .where('service_id', '=', write.service_id)
          .where('user_id', '=', write.user_id)
          .where('tenant_id', '=', write.tenant_id)
          .executeTakeFirst();
        const fields = {
          status: 'active' as const,
          expires_at: write.expires_at,
          scope: write.scope,
          profile: write.profile,
          tags: JSON.stringify(write.tags),
          // A new grant starts a clean record: no failures, not checked yet.
          failing_since: null,
          healthy: null,
          last_checked_at: null,
          lease_owner: null,
          lease_until: null,
          ...NO_FAILURE,
          updated_at: now,
        };
        let id: string;
        let created = false;
        if (existing) {
          id = existing.id;
          await trx
            .updateTable('identities')
            // New tokens from a new grant count as renewed (the keep-alive measures idleness from here).
            .set({ ...fields, tokens: write.sealTokens(id), version: existing.version + 1, last_refresh_at: now })
            .where('id', '=', id)
            .execute();
          await trx.deleteFrom('identity_tags').where('identity_id', '=', id).execute();
        } else {
          id = newId();
          const inserted = await trx
            .insertInto('identities')
            .values({
              ...fields,
              id,
              service_id: write.service_id,
              tenant_id: write.tenant_id,
              user_id: write.user_id,
              tokens: write.sealTokens(id),
              version: 1,
              last_refresh_at: null,
              created_at: now,
            })
            .onConflict((oc) => oc.columns(['service_id', 'user_id', 'tenant_id']).doNothing())
            .executeTakeFirst();
          // Another callback for the same user won the race: go round and update its row instead.
          if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return undefined;
          created = true;
        }
        const tagRows = Object.entries(write.tags).map(([key, value]) => ({ identity_id: id, key, value }));
        if (tagRows.length > 0) await trx.insertInto('identity_tags').values(tagRows).execute();
        const row = await trx.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
        return { row, created };
      });
      if (result) return result;
    }
    throw new Error('Could not store the identity: concurrent authorizations for the same user kept colliding.');
  }

  /** Identities matching the filter, in id order, after the cursor; without their tokens, which a listing never returns. */
  listIdentities(filter: IdentityListFilter, after: string | undefined, limit: number): Promise<ListedIdentityRow[]> {
    let q = this.filtered(this.db.selectFrom('identities').select(LISTED_COLUMNS), filter);
    if (after !== undefined) q = q.where('id', '>', after);
    return q.orderBy('id').limit(limit).execute();
  }

  /** Up to `limit` identities matching the filter; used to find one and tell ambiguity. */
  async findIdentities(filter: IdentityListFilter, limit: number): Promise<IdentityRow[]> {
    return this.filtered(this.db.selectFrom('identities').selectAll(), filter).limit(limit).execute();
  }

  getTokenRow(id: string): Promise<TokenRow | undefined> {
    return this.db.selectFrom('identities').select(TOKEN_COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  findTokenRows(serviceId: string, userId: string, tenantId: string | undefined): Promise<TokenRow[]> {
    return this.filtered(this.db.selectFrom('identities').select(TOKEN_COLUMNS), { serviceId, userId, tenantId }).limit(2).execute();
  }

  private filtered<O>(
    q: SelectQueryBuilder<Database, 'identities', O>,
    filter: IdentityListFilter,
  ): SelectQueryBuilder<Database, 'identities', O> {
    if (filter.serviceId !== undefined) q = q.where('service_id', '=', filter.serviceId);
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    if (filter.tenantId !== undefined) q = q.where('tenant_id', '=', filter.tenantId);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    for (const [key, value] of Object.entries(filter.tags ?? {})) {
      if (typeof value !== 'string') throw new InvalidInput(`Tag "${key}" must have a string value.`, 'tags');
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('identity_tags')
            .select(sql<number>`1`.as('one'))
            .whereRef('identity_tags.identity_id', '=', 'identities.id')
            .where('identity_tags.key', '=', key)
            .where('identity_tags.value', '=', value),
        ),
      );
    }
    return q;
  }

  async deleteIdentity(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('identity_tags').where('identity_id', '=', id).execute();
      const r = await trx.deleteFrom('identities').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async setStatus(id: string, status: IdentityRow['status'], now: number): Promise<void> {
    await this.db.updateTable('identities').set({ status, updated_at: now }).where('id', '=', id).execute();
  }

  async updateIdentityFields(id: string, fields: { tags?: Tags; metadata?: string }, now: number): Promise<IdentityRow | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('identities')
        .set({
          updated_at: now,
          ...(fields.tags ? { tags: JSON.stringify(fields.tags) } : {}),
          ...(fields.metadata !== undefined ? { metadata: fields.metadata } : {}),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return undefined;
      if (fields.tags) {
        await trx.deleteFrom('identity_tags').where('identity_id', '=', id).execute();
        const tagRows = Object.entries(fields.tags).map(([key, value]) => ({ identity_id: id, key, value }));
        if (tagRows.length > 0) await trx.insertInto('identity_tags').values(tagRows).execute();
      }
      return trx.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
    });
  }

  async markFailing(id: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('identities')
      .set({ failing_since: now })
      .where('id', '=', id)
      .where('failing_since', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async markDead(before: number, now: number, limit: number): Promise<IdentityRow[]> {
    const rows = await this.db
      .selectFrom('identities')
      .selectAll()
      .where('status', 'in', ['active', 'needs_reauth'])
      .where('failing_since', '<', before)
      .limit(limit)
      .execute();
    const marked: IdentityRow[] = [];
    for (const row of rows) {
      // Conditional: a reconnect or a successful refresh between the read and here wins.
      const r = await this.db
        .updateTable('identities')
        .set({ status: 'dead', updated_at: now })
        .where('id', '=', row.id)
        .where('status', '=', row.status)
        .where('failing_since', '<', before)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 1) marked.push(row);
    }
    return marked;
  }

  async recordCheck(id: string, healthy: boolean, now: number): Promise<void> {
    await this.db
      .updateTable('identities')
      .set({ healthy: healthy ? 1 : 0, last_checked_at: now })
      .where('id', '=', id)
      .execute();
  }

  listIdle(serviceIds: string[], before: number, now: number, limit: number): Promise<IdentityRow[]> {
    if (serviceIds.length === 0) return Promise.resolve([]);
    return this.db
      .selectFrom('identities')
      .selectAll()
      .where('status', '=', 'active')
      .where('service_id', 'in', serviceIds)
      .where((eb) => eb(eb.fn.coalesce('last_refresh_at', 'created_at'), '<', before))
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
      .orderBy(sql`coalesce(last_refresh_at, created_at)`)
      .limit(limit)
      .execute();
  }

  listUnchecked(before: number, limit: number): Promise<IdentityRow[]> {
    return (
      this.db
        .selectFrom('identities')
        .selectAll()
        .where('status', '=', 'active')
        // The expression of the partial index identities_unchecked (migration 0006), so that a round
        // walks it instead of sorting every active identity; never checked (NULL) counts as 0.
        .where(sql<number>`coalesce(last_checked_at, 0)`, '<', before)
        .orderBy(sql`coalesce(last_checked_at, 0)`)
        .limit(limit)
        .execute()
    );
  }

  async countIdentities(): Promise<{ service_id: string; status: string; n: number }[]> {
    const rows = await this.db
      .selectFrom('identities')
      .select(['service_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['service_id', 'status'])
      .execute();
    return rows.map((r) => ({ service_id: r.service_id, status: r.status, n: Number(r.n) }));
  }

  // ---- refresh lease ----

  /**
   * Claims the refresh lease: only if nobody holds a live one, the row is still at `version`
   * (someone who refreshed meanwhile bumped it), active, and not cooling down after a recorded
   * failure. One conditional UPDATE returning the row, so it is atomic on any database and needs no re-read.
   */
  async claimLease(
    id: string,
    version: number,
    owner: string,
    now: number,
    until: number,
    takeOver?: string,
  ): Promise<LeaseClaim | undefined> {
    return leaseClaim(await this.claimQuery(id, version, owner, now, until, takeOver).executeTakeFirst());
  }

  /** The claim's UPDATE … RETURNING, with the versions of the row's service and custom provider (see LeaseClaim). */
  protected claimQuery(id: string, version: number, owner: string, now: number, until: number, takeOver: string | undefined) {
    return this.db
      .updateTable('identities')
      .set({ lease_owner: owner, lease_until: until })
      .where('id', '=', id)
      .where('version', '=', version)
      .where('status', '=', 'active')
      .where((eb) => eb.or([eb('refresh_retry_at', 'is', null), eb('refresh_retry_at', '<=', now)]))
      .where((eb) =>
        eb.or([
          eb('lease_until', 'is', null),
          eb('lease_until', '<=', now),
          ...(takeOver === undefined ? [] : [eb('lease_owner', '=', takeOver)]),
        ]),
      )
      .returningAll()
      .returning((eb) => [
        eb.selectFrom('services').select('services.updated_at').whereRef('services.id', '=', 'identities.service_id').as('service_version'),
        eb
          .selectFrom('providers')
          .innerJoin('services', 'services.provider_id', 'providers.id')
          .select('providers.updated_at')
          .whereRef('services.id', '=', 'identities.service_id')
          .as('provider_version'),
      ]);
  }

  /** On one machine (SQLite) the owner names its process, id and start time (lease-holder.ts); PostgreSQL overrides this. */
  async leaseHolderGone(row: IdentityRow, _claimedAt: number): Promise<boolean> {
    return row.lease_owner !== null && leaseHolderGone(row.lease_owner);
  }

  /** Writes refreshed tokens and gives the lease back, fenced on owner and version; the event in the same transaction. */
  async completeRefresh(
    id: string,
    version: number,
    owner: string,
    write: RefreshWrite,
    now: number,
    event: EventDraft,
  ): Promise<IdentityRow | undefined> {
    return this.writeLogged(event, (trx) => this.refreshQuery(trx, id, version, owner, write, now).executeTakeFirst());
  }

  /**
   * A lease holder's fenced write and the event about the row it wrote (none when it wrote none), in
   * one transaction: the row written, or undefined when the lease was lost. PostgreSQL overrides
   * its callers with one statement that also unlocks (postgres.ts, writeLoggedAndUnlock).
   */
  private writeLogged(
    event: EventDraft,
    write: (trx: Kysely<Database>) => Promise<IdentityRow | undefined>,
  ): Promise<IdentityRow | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const row = await write(trx);
      if (row) await trx.insertInto('events').values(eventRow(event, row)).execute();
      return row;
    });
  }

  /** The refresh's fenced UPDATE … RETURNING the row written. */
  protected refreshQuery(db: Kysely<Database>, id: string, version: number, owner: string, write: RefreshWrite, now: number) {
    return db
      .updateTable('identities')
      .set({ ...write, ...NO_FAILURE, version: version + 1, lease_owner: null, lease_until: null, updated_at: now })
      .where('id', '=', id)
      .where('version', '=', version)
      .where('lease_owner', '=', owner)
      .returningAll();
  }

  /** Extends a lease this owner still holds. */
  async extendLease(id: string, owner: string, until: number): Promise<boolean> {
    const r = await this.db
      .updateTable('identities')
      .set({ lease_until: until })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async releaseLease(id: string, owner: string): Promise<void> {
    await this.db
      .updateTable('identities')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .execute();
  }

  /** The failure's fenced UPDATE and its event in one transaction (PostgreSQL: one statement). */
  async failRefresh(id: string, owner: string, now: number, failed: RefreshFailed): Promise<IdentityRow | undefined> {
    return this.writeLogged(failed.event, (trx) => this.failQuery(trx, id, owner, now, failed).executeTakeFirst());
  }

  /** A failed refresh's fenced UPDATE … RETURNING the row written. */
  protected failQuery(db: Kysely<Database>, id: string, owner: string, now: number, failed: RefreshFailed) {
    return db
      .updateTable('identities')
      .set((eb) => ({
        lease_owner: null,
        lease_until: null,
        ...(failed.status ? { status: failed.status, updated_at: now } : {}),
        ...failed.failure,
        failing_since: eb.fn.coalesce('failing_since', eb.val(now)),
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .returningAll();
  }

  /**
   * Active identities whose token expires before `before` and whose lease is free: the background
   * refresher's work list, whole rows, so that each refresh starts at its claim without a re-read.
   */
  listExpiring(before: number, now: number, limit: number): Promise<IdentityRow[]> {
    return (
      this.db
        .selectFrom('identities')
        .selectAll()
        .where('status', '=', 'active')
        .where('expires_at', 'is not', null)
        .where('expires_at', '<', before)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
        // One that failed waits out its cool-down: the provider is not asked again sooner.
        .where((eb) => eb.or([eb('refresh_retry_at', 'is', null), eb('refresh_retry_at', '<=', now)]))
        .orderBy('expires_at')
        .limit(limit)
        .execute()
    );
  }

  // ---- events ----

  async insertEvent(row: EventRow): Promise<void> {
    await this.db.insertInto('events').values(row).execute();
  }

  listEvents(options: { after?: string; identityId?: string; limit: number }): Promise<EventRow[]> {
    let q = this.db.selectFrom('events').selectAll();
    if (options.after !== undefined) q = q.where('id', '>', options.after);
    if (options.identityId !== undefined) q = q.where('identity_id', '=', options.identityId);
    return q.orderBy('id').limit(options.limit).execute();
  }
}
