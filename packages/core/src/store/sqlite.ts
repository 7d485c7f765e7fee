import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.js';
import { Store, type HotReads, type IdentityRow } from './store.js';

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
 * The token-read lookups as prepared statements on a read-only connection of their own: WAL lets
 * it read while another connection writes, and it never sees a write that is not committed.
 */
function hotReads(reader: BetterSqlite3.Database): HotReads {
  const byId = reader.prepare<[string], IdentityRow>('SELECT * FROM identities WHERE id = ?');
  // A literal LIMIT: with a bound one SQLite plans a slower loop (measured 3× on this query).
  const byUser = reader.prepare<[string, string], IdentityRow>('SELECT * FROM identities WHERE service_id = ? AND user_id = ? LIMIT 2');
  const byTenantUser = reader.prepare<[string, string, string], IdentityRow>(
    'SELECT * FROM identities WHERE service_id = ? AND user_id = ? AND tenant_id = ? LIMIT 2',
  );
  return {
    identityById: (id) => byId.get(id),
    identitiesByUser: (serviceId, userId, tenantId) =>
      tenantId === undefined ? byUser.all(serviceId, userId) : byTenantUser.all(serviceId, userId, tenantId),
  };
}

/** Opens (creating if needed) and migrates a SQLite store in WAL mode, safe to share between processes. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const sqlite = open(options.path, busyTimeoutMs);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await new Store(db, 'sqlite').migrate();
  // An in-memory database is private to its connection, so there the writer reads too.
  const reader = options.path === ':memory:' ? sqlite : open(options.path, busyTimeoutMs, true);
  return new Store(
    db,
    'sqlite',
    async () => {
      if (reader !== sqlite) reader.close();
      await db.destroy();
    },
    hotReads(reader),
  );
}
