import { Kysely, PostgresDialect, sql, type CompiledQuery } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { LeaseLocks, leaseLockState } from './lease-locks.js';
import { CoalescedLookup, type RunStatement } from './pg-batch.js';
import { SELECT_TOKEN_ROW, leaseClaim, SqlStore, type ClaimedRow } from './sql-store.js';
import {
  isUserLookup,
  type EventDraft,
  type IdentityListFilter,
  type IdentityRow,
  type LeaseClaim,
  type ProviderRow,
  type RefreshFailed,
  type RefreshWrite,
  type ServiceRow,
  type Store,
  type TokenRow,
} from './store.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Connections in the pool. */
  max?: number;
}

/** pg asks for the parsers of a result's columns on every query: one function, not a new one each time. */
const parseInt8 = (v: string) => Number(v);

/** Opens and migrates a PostgreSQL store. BIGINT columns are read as numbers: every value stored is a millisecond time, well inside 2^53. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const types: pg.CustomTypesConfig = {
    getTypeParser: ((oid: number, format?: string) =>
      oid === pg.types.builtins.INT8 ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10, types });
  // A restart or failover kills connections. An idle one the pool drops (reporting it here); one in
  // use fails its query, and pg also emits 'error' on the client, which the pool does not listen to
  // while the client is checked out: without these listeners either event would crash the process.
  // A client that failed is not queryable any more, so the pool discards it on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => void client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const locks = new LeaseLocks(options.connectionString, types);
  const store = new PostgresStore(
    db,
    'postgres',
    async () => {
      await locks.close();
      await db.destroy();
    },
    pool,
    locks,
  );
  await store.migrate();
  return store;
}

/** A lease claimed this soon after the database started may predate the start on a skewed clock: only its expiry tells. */
const CLOCK_SKEW_MS = 5_000;

/**
 * The PostgreSQL backend. The token-read lookups are named prepared statements: PostgreSQL parses
 * and plans them once per connection instead of on every request; concurrent token reads go
 * together, as one statement (pg-batch.ts). Everything else is the shared SQL.
 * Refresh leases are tied to this process's database session (lease-locks.ts): the holder takes the
 * identity's advisory lock before it claims the row, and gives it back once the row is written.
 */
class PostgresStore extends SqlStore {
  constructor(
    db: Kysely<Database>,
    dialect: 'postgres',
    onClose: () => Promise<void>,
    private readonly pool: pg.Pool,
    private readonly locks: LeaseLocks,
  ) {
    super(db, dialect, onClose);
    const run: RunStatement = (config) => pool.query(config);
    this.tokenById = new CoalescedLookup({ name: 'everyauth_token_by_id', select: SELECT_TOKEN_ROW, keys: ['id'] }, run);
    this.tokenByUser = new CoalescedLookup(
      { name: 'everyauth_token_by_user', select: SELECT_TOKEN_ROW, keys: ['service_id', 'user_id'], limit: 2 },
      run,
    );
    this.tokenByTenantUser = new CoalescedLookup(
      { name: 'everyauth_token_by_tenant_user', select: SELECT_TOKEN_ROW, keys: ['service_id', 'user_id', 'tenant_id'], limit: 2 },
      run,
    );
  }

  /** The token reads, coalesced under concurrency (pg-batch.ts). */
  private readonly tokenById: CoalescedLookup<TokenRow>;
  private readonly tokenByUser: CoalescedLookup<TokenRow>;
  private readonly tokenByTenantUser: CoalescedLookup<TokenRow>;

  /**
   * The lock first: a row leased by a holder without its lock would look like a dead holder's. So
   * the claim runs on the lock session, the lock taken in the same statement (a materialised CTE,
   * evaluated once) as a condition of the UPDATE, and given back in it when the row was not claimed.
   */
  override async claimLease(
    id: string,
    version: number,
    owner: string,
    now: number,
    until: number,
    takeOver?: string,
  ): Promise<LeaseClaim | undefined> {
    const update = this.claimQuery(id, version, owner, now, until, takeOver)
      .where(sql<boolean>`(SELECT ok FROM lease_lock)`)
      .compile();
    const key = `hashtextextended($${update.parameters.length + 1}, 0)`;
    const [r] = await this.locks.query<ClaimedRow & { unlocked: boolean | null }>(id, {
      name: takeOver === undefined ? 'everyauth_claim_lease' : 'everyauth_claim_lease_taking_over',
      text:
        `WITH lease_lock AS MATERIALIZED (SELECT pg_try_advisory_lock(${key}) AS ok), claimed AS (${update.sql}) ` +
        `SELECT claimed.*, CASE WHEN (SELECT ok FROM lease_lock) AND NOT EXISTS (SELECT 1 FROM claimed) THEN pg_advisory_unlock(${key}) END AS unlocked ` +
        'FROM (SELECT 1) AS one LEFT JOIN claimed ON true',
      values: [...update.parameters, id],
    });
    const { unlocked: _unlocked, ...claimed } = r!;
    return leaseClaim(claimed);
  }

  /**
   * The write, its event and the unlock in one statement on the lock session: one round trip.
   * The lock is given back however the write was decided; a write that threw is retried, fenced as ever.
   */
  override completeRefresh(
    id: string,
    version: number,
    owner: string,
    write: RefreshWrite,
    now: number,
    event: EventDraft,
  ): Promise<IdentityRow | undefined> {
    const update = this.refreshQuery(this.db, id, version, owner, write, now).compile();
    return this.writeLoggedAndUnlock(id, update, event, 'everyauth_complete_refresh');
  }

  /** As completeRefresh: the failure, its event and the unlock in one statement; a failure that threw still unlocks. */
  override async failRefresh(id: string, owner: string, now: number, failed: RefreshFailed): Promise<IdentityRow | undefined> {
    // Unnamed: which columns it sets depends on the failure.
    const update = this.failQuery(this.db, id, owner, now, failed).compile();
    try {
      return await this.writeLoggedAndUnlock(id, update, failed.event);
    } catch (err) {
      await this.locks.unlock(id);
      throw err;
    }
  }

  /**
   * A fenced `UPDATE … RETURNING *` of a lease holder, the event about the row it wrote (none when
   * it wrote none), and the identity's lock given back, on the lock session: the row written, or
   * undefined when the lease was lost.
   */
  private async writeLoggedAndUnlock(
    id: string,
    update: CompiledQuery,
    event: EventDraft,
    name?: string,
  ): Promise<IdentityRow | undefined> {
    const n = update.parameters.length;
    const [r] = await this.locks.query<IdentityRow & { unlocked: boolean }>(id, {
      name,
      text:
        `WITH done AS (${update.sql}), logged AS (INSERT INTO events (id, type, service_id, identity_id, user_id, tenant_id, tags, data, at) ` +
        `SELECT $${n + 1}::text, $${n + 2}::text, service_id, id, user_id, tenant_id, tags, $${n + 3}::text, $${n + 4}::bigint FROM done) ` +
        `SELECT done.*, pg_advisory_unlock(hashtextextended($${n + 5}, 0)) AS unlocked FROM (SELECT 1) AS one LEFT JOIN done ON true`,
      values: [...update.parameters, event.id, event.type, event.data, event.at, id],
    });
    const { unlocked: _unlocked, ...row } = r!;
    return row.id ? row : undefined;
  }

  override async releaseLease(id: string, owner: string): Promise<void> {
    try {
      await super.releaseLease(id, owner);
    } finally {
      await this.locks.unlock(id);
    }
  }

  /**
   * Gone when no session holds the identity's lock. A database restart frees every lock while the
   * holders live on, so a lease claimed before the server started is left to its expiry.
   */
  override async leaseHolderGone(row: IdentityRow, claimedAt: number): Promise<boolean> {
    const state = await leaseLockState(this.pool, row.id);
    return !state.held && state.serverStartedAt + CLOCK_SKEW_MS < claimedAt;
  }

  override async getIdentity(id: string): Promise<IdentityRow | undefined> {
    return (await this.named<IdentityRow>('everyauth_identity_by_id', 'SELECT * FROM identities WHERE id = $1', [id]))[0];
  }

  /** Read on every proxied request, with the identity: a named statement too. */
  override async getService(id: string): Promise<ServiceRow | undefined> {
    return (await this.named<ServiceRow>('everyauth_service_by_id', 'SELECT * FROM services WHERE id = $1', [id]))[0];
  }

  override async getProvider(id: string): Promise<ProviderRow | undefined> {
    return (await this.named<ProviderRow>('everyauth_provider_by_id', 'SELECT * FROM providers WHERE id = $1', [id]))[0];
  }

  override async findIdentities(filter: IdentityListFilter, limit: number): Promise<IdentityRow[]> {
    if (!isUserLookup(filter, limit)) return super.findIdentities(filter, limit);
    const rows =
      filter.tenantId === undefined
        ? await this.named<IdentityRow>(
            'everyauth_identities_by_user',
            'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 LIMIT 2',
            [filter.serviceId!, filter.userId!],
          )
        : await this.named<IdentityRow>(
            'everyauth_identities_by_tenant_user',
            'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 AND tenant_id = $3 LIMIT 2',
            [filter.serviceId!, filter.userId!, filter.tenantId],
          );
    return rows.slice(0, limit);
  }

  // The token read's own columns: fewer values to send, and to parse in pg's protocol reader.
  override async getTokenRow(id: string): Promise<TokenRow | undefined> {
    return (await this.tokenById.read([id]))[0];
  }

  override findTokenRows(serviceId: string, userId: string, tenantId: string | undefined): Promise<TokenRow[]> {
    return tenantId === undefined ? this.tokenByUser.read([serviceId, userId]) : this.tokenByTenantUser.read([serviceId, userId, tenantId]);
  }

  /**
   * A named statement: PostgreSQL parses and plans it once per connection. Only for point lookups,
   * whose plan never depends on the values (a generic plan would be bad for the tag queries).
   */
  private async named<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]> {
    return (await this.pool.query<R>({ name, text, values })).rows;
  }
}
