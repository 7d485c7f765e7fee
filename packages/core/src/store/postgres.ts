import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { isUserLookup, SqlStore } from './sql-store.js';
import type { IdentityListFilter, IdentityRow, Store } from './store.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Connections in the pool. */
  max?: number;
}

/** Opens and migrates a PostgreSQL store. BIGINT columns are read as numbers: every value stored is a millisecond time, well inside 2^53. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === pg.types.builtins.INT8
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // A restart or failover kills connections. An idle one the pool drops (reporting it here); one in
  // use fails its query, and pg also emits 'error' on the client, which the pool does not listen to
  // while the client is checked out: without these listeners either event would crash the process.
  // A client that failed is not queryable any more, so the pool discards it on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => void client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const store = new PostgresStore(db, 'postgres', async () => db.destroy(), pool);
  await store.migrate();
  return store;
}

/**
 * The PostgreSQL backend. The token-read lookups are named prepared statements: PostgreSQL parses
 * and plans them once per connection instead of on every request. Everything else is the shared SQL.
 */
class PostgresStore extends SqlStore {
  constructor(
    db: Kysely<Database>,
    dialect: 'postgres',
    onClose: () => Promise<void>,
    private readonly pool: pg.Pool,
  ) {
    super(db, dialect, onClose);
  }

  override async getIdentity(id: string): Promise<IdentityRow | undefined> {
    const r = await this.pool.query<IdentityRow>({
      name: 'everyauth_identity_by_id',
      text: 'SELECT * FROM identities WHERE id = $1',
      values: [id],
    });
    return r.rows[0];
  }

  override async findIdentities(filter: IdentityListFilter, limit: number): Promise<IdentityRow[]> {
    if (!isUserLookup(filter, limit)) return super.findIdentities(filter, limit);
    const r =
      filter.tenantId === undefined
        ? await this.pool.query<IdentityRow>({
            name: 'everyauth_identities_by_user',
            text: 'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 LIMIT 2',
            values: [filter.serviceId, filter.userId],
          })
        : await this.pool.query<IdentityRow>({
            name: 'everyauth_identities_by_tenant_user',
            text: 'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 AND tenant_id = $3 LIMIT 2',
            values: [filter.serviceId, filter.userId, filter.tenantId],
          });
    return r.rows.slice(0, limit);
  }
}
