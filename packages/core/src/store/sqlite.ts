import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase } from 'kysely';
import type { Database } from './schema.js';
import { SELECT_TOKEN_ROW, SqlStore } from './sql-store.js';
import {
  TOKEN_COLUMNS,
  isUserLookup,
  type IdentityListFilter,
  type IdentityRow,
  type ProviderRow,
  type ServiceRow,
  type Store,
  type TokenRow,
} from './store.js';
import { TurnSnapshot, endTurnSnapshots } from './turn-snapshot.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** How long a writer waits for another process's lock, in ms. */
  busyTimeoutMs?: number;
}

function open(path: string, busyTimeoutMs: number, readonly = false): BetterSqlite3.Database {
  const sqlite = new BetterSqlite3(path, { readonly });
  sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
  if (!readonly) {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
  }
  return sqlite;
}

/**
 * The SQLite backend. The token-read lookups are prepared statements on a read-only connection of
 * their own: WAL lets it read while another connection writes, and it never sees a write that is
 * not committed. better-sqlite3 is synchronous, so these return without a trip through the event loop.
 * The reads of one event-loop turn share a read transaction (turn-snapshot.ts).
 */
class SqliteStore extends SqlStore {
  private readonly byId: BetterSqlite3.Statement<[string], IdentityRow>;
  private readonly byUser: BetterSqlite3.Statement<[string, string], IdentityRow>;
  private readonly byTenantUser: BetterSqlite3.Statement<[string, string, string], IdentityRow>;
  private readonly tokenById: BetterSqlite3.Statement<[string], unknown[]>;
  private readonly tokenByUser: BetterSqlite3.Statement<[string, string], unknown[]>;
  private readonly tokenByTenantUser: BetterSqlite3.Statement<[string, string, string], unknown[]>;
  private readonly serviceById: BetterSqlite3.Statement<[string], ServiceRow>;
  private readonly providerById: BetterSqlite3.Statement<[string], ProviderRow>;

  constructor(
    db: Kysely<Database>,
    onClose: () => Promise<void>,
    reader: BetterSqlite3.Database,
    /** Absent when the writer reads too (an in-memory database): its transactions are Kysely's. */
    private readonly snapshot: TurnSnapshot | undefined,
  ) {
    super(db, 'sqlite', onClose);
    this.byId = reader.prepare<[string], IdentityRow>('SELECT * FROM identities WHERE id = ?');
    // A literal LIMIT: with a bound one SQLite plans a slower loop (measured 3× on this query).
    this.byUser = reader.prepare<[string, string], IdentityRow>('SELECT * FROM identities WHERE service_id = ? AND user_id = ? LIMIT 2');
    this.byTenantUser = reader.prepare<[string, string, string], IdentityRow>(
      'SELECT * FROM identities WHERE service_id = ? AND user_id = ? AND tenant_id = ? LIMIT 2',
    );
    // The token read's own columns: better-sqlite3 builds an object of every column selected, and the
    // fifteen the read does not use cost about a fifth of a read (measured on 10,000 identities).
    // As arrays of values (`raw`), named by tokenRow: better-sqlite3 names each column of each row
    // through V8's API, which cost a third of a read in a transaction (3.4 against 2.5 µs, measured).
    this.tokenById = reader.prepare<[string], unknown[]>(`${SELECT_TOKEN_ROW} WHERE id = ?`).raw(true);
    this.tokenByUser = reader
      .prepare<[string, string], unknown[]>(`${SELECT_TOKEN_ROW} WHERE service_id = ? AND user_id = ? LIMIT 2`)
      .raw(true);
    this.tokenByTenantUser = reader
      .prepare<[string, string, string], unknown[]>(`${SELECT_TOKEN_ROW} WHERE service_id = ? AND user_id = ? AND tenant_id = ? LIMIT 2`)
      .raw(true);
    // Read on every proxied request, with the identity.
    this.serviceById = reader.prepare<[string], ServiceRow>('SELECT * FROM services WHERE id = ?');
    // Read with it when the service's provider is a custom one (its authFailure rule, its base URLs).
    this.providerById = reader.prepare<[string], ProviderRow>('SELECT * FROM providers WHERE id = ?');
  }

  override async getIdentity(id: string): Promise<IdentityRow | undefined> {
    return this.read(() => this.byId.get(id));
  }

  override async getService(id: string): Promise<ServiceRow | undefined> {
    return this.read(() => this.serviceById.get(id));
  }

  override async getProvider(id: string): Promise<ProviderRow | undefined> {
    return this.read(() => this.providerById.get(id));
  }

  override async findIdentities(filter: IdentityListFilter, limit: number): Promise<IdentityRow[]> {
    if (!isUserLookup(filter, limit)) return super.findIdentities(filter, limit);
    const rows = this.read(() =>
      filter.tenantId === undefined
        ? this.byUser.all(filter.serviceId!, filter.userId!)
        : this.byTenantUser.all(filter.serviceId!, filter.userId!, filter.tenantId),
    );
    return rows.slice(0, limit);
  }

  override async getTokenRow(id: string): Promise<TokenRow | undefined> {
    const values = this.read(() => this.tokenById.get(id));
    return values && tokenRow(values);
  }

  override async findTokenRows(serviceId: string, userId: string, tenantId: string | undefined): Promise<TokenRow[]> {
    const rows = this.read(() =>
      tenantId === undefined ? this.tokenByUser.all(serviceId, userId) : this.tokenByTenantUser.all(serviceId, userId, tenantId),
    );
    return rows.map(tokenRow);
  }

  private read<T>(statement: () => T): T {
    return this.snapshot ? this.snapshot.read(statement) : statement();
  }
}

/** A token read's row from its values, in TOKEN_COLUMNS' order (the order SELECT_TOKEN_ROW selects them in). */
function tokenRow(values: unknown[]): TokenRow {
  const row: Record<string, unknown> = {};
  for (let i = 0; i < TOKEN_COLUMNS.length; i++) row[TOKEN_COLUMNS[i]!] = values[i];
  return row as TokenRow;
}

/** Opens (creating if needed) and migrates a SQLite store in WAL mode, safe to share between processes. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const sqlite = open(options.path, busyTimeoutMs);
  // Each statement the writer runs ends this process's read snapshots first, so that a read after
  // this process's own write sees it (turn-snapshot.ts).
  const writer: SqliteDatabase = {
    close: () => sqlite.close(),
    prepare: (text) => {
      endTurnSnapshots();
      return sqlite.prepare(text);
    },
  };
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: writer }) });
  await new SqlStore(db, 'sqlite').migrate();
  // An in-memory database is private to its connection, so there the writer reads too.
  const reader = options.path === ':memory:' ? sqlite : open(options.path, busyTimeoutMs, true);
  const snapshot = reader === sqlite ? undefined : new TurnSnapshot(reader);
  return new SqliteStore(
    db,
    async () => {
      snapshot?.end();
      if (reader !== sqlite) reader.close();
      await db.destroy();
    },
    reader,
    snapshot,
  );
}
