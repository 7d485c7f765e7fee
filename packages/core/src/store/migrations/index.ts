import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_server_moved.js';
import * as m0003 from './0003_service_api.js';
import * as m0004 from './0004_lifecycle.js';
import * as m0005 from './0005_refresh_failures.js';
import * as m0006 from './0006_scale_indexes.js';

/** Every migration, in order. A new one is a new file here and a new line below. */
const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_server': m0002,
  '0003_service_api': m0003,
  '0004_lifecycle': m0004,
  '0005_refresh_failures': m0005,
  '0006_scale_indexes': m0006,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

/**
 * Runs a migration set to its latest migration. Core's set keeps its bookkeeping in Kysely's
 * default `kysely_migration` table; another package's set (the server's) names its own table, as
 * Kysely refuses a database holding executed migrations its provider does not list.
 */
export async function runMigrations(db: Kysely<any>, provider: MigrationProvider, migrationTableName?: string): Promise<void> {
  const migrator = new Migrator({
    db,
    provider,
    ...(migrationTableName ? { migrationTableName, migrationLockTableName: `${migrationTableName}_lock` } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Database migration ${failed} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}
