import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { Store } from './store.js';

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
        oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // A restart or failover kills connections. An idle one the pool drops (reporting it here); one in
  // use fails its query, and pg also emits 'error' on the client, which the pool does not listen to
  // while the client is checked out: without these listeners either event would crash the process.
  // A client that failed is not queryable any more, so the pool discards it on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => void client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const store = new Store(db, 'postgres');
  await store.migrate();
  return store;
}
