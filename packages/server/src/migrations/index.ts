import type { Migration, MigrationProvider } from 'kysely';
import { runMigrations, type Store } from '@everyauth/core';
import * as m0001 from './0001_server_tables.js';
import * as m0002 from './0002_connect_sessions.js';

/** The server's migrations, in order. A new one is a new file here and a new line below. */
const migrations: Record<string, Migration> = {
  '0001_server_tables': m0001,
  '0002_connect_sessions': m0002,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Kysely's bookkeeping tables for this set, apart from core's (`kysely_migration`), so each set only sees its own. */
export const SERVER_MIGRATION_TABLE = 'everyauth_server_migration';

const migrated = new WeakMap<Store, Promise<void>>();

/**
 * Brings the server's tables in `store` to the latest migration, once per store per process
 * (later calls share the first one's promise). Core's own tables are migrated when the store opens.
 */
export function migrateServerTables(store: Store): Promise<void> {
  let done = migrated.get(store);
  if (!done) {
    done = run(store);
    migrated.set(store, done);
    done.catch(() => migrated.delete(store));
  }
  return done;
}

function run(store: Store): Promise<void> {
  return runMigrations(store.db, provider, SERVER_MIGRATION_TABLE);
}
