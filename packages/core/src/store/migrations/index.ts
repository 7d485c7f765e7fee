import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_server.js';
import * as m0003 from './0003_refresh_failures.js';

/** Every migration, in order. A new one is a new file here and a new line below. */
const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_server': m0002,
  '0003_refresh_failures': m0003,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
