import { InvalidInput } from '../errors.js';
import type { Store } from './store.js';

/**
 * Opens the store a URL names: `postgres://…` (or `postgresql://…`) for PostgreSQL, `sqlite:<path>`
 * or a plain path for SQLite. The PostgreSQL driver loads only when asked for.
 */
export async function openStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore({ connectionString: url });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new InvalidInput(
      `Store URL ${url.replace(/\/\/[^@/]*@/, '//…@')} is not supported: use postgres://… or a SQLite file path.`,
      'store',
    );
  }
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore({ path: url.replace(/^sqlite:/, '') });
}

export { SqlStore } from './sql-store.js';
export type * from './store.js';
