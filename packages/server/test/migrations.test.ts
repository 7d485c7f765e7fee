import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '@everyauth/core';
import { createApiKey, listApiKeys, migrateServerTables, SERVER_MIGRATION_TABLE } from '../src/index.js';
import * as coreInitial from '../../core/src/store/migrations/0001_initial.js';
import { createTestDatabase } from '../../core/test/support/broker.js';
import * as oldCoreServer from './support/old-core-0002-server.js';

const SERVER_TABLES = ['api_keys', 'webhooks', 'webhook_deliveries', 'connect_sessions'];

const tablesOf = async (store: Store) => (await store.db.introspection.getTables()).map((t) => t.name);

/** A database: its store URL, a raw Kysely on it for set-up, and clean-up. */
interface Db {
  url: string;
  raw(): Kysely<any>;
  drop(): Promise<void>;
}

async function sqliteDb(): Promise<Db> {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-migrations-'));
  const path = join(dir, 'everyauth.db');
  return {
    url: path,
    raw: () => new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) }),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresDb(): Promise<Db> {
  const { url, drop } = await createTestDatabase();
  return { url, raw: () => new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) }), drop };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.each([
  ['sqlite', sqliteDb],
  ['postgres', postgresDb],
] as const)('server tables on %s', (_kind, makeDb) => {
  it('a new store has none of the server tables until the server migrates its own set', async () => {
    const db = await makeDb();
    cleanups.push(db.drop);
    const store = await openStore(db.url);
    cleanups.push(() => store.close());
    for (const t of SERVER_TABLES) expect(await tablesOf(store)).not.toContain(t);

    await migrateServerTables(store);
    expect(await tablesOf(store)).toEqual(expect.arrayContaining([...SERVER_TABLES, SERVER_MIGRATION_TABLE]));
    expect(await listApiKeys(store)).toEqual([]);
  });

  it('a database migrated by the old core 0002_server keeps working, with its keys', async () => {
    const db = await makeDb();
    cleanups.push(db.drop);
    // The database as an older release left it: core's 0001 and the old 0002_server, one key stored.
    const raw = db.raw();
    const old: Record<string, Migration> = { '0001_initial': coreInitial, '0002_server': oldCoreServer };
    const { error } = await new Migrator({ db: raw, provider: { getMigrations: async () => old } }).migrateToLatest();
    expect(error).toBeUndefined();
    await raw
      .insertInto('api_keys')
      .values({ id: 'oldkey', name: 'from before', hash: 'ab'.repeat(32), scopes: '["admin"]', created_at: 1_700_000_000_000 })
      .execute();
    await raw.destroy();

    // Core opens it (its 0002_server is now a placeholder, already recorded as run), then the server migrates its set.
    const store = await openStore(db.url);
    cleanups.push(() => store.close());
    await migrateServerTables(store);
    const keys = await listApiKeys(store);
    expect(keys.map((k) => k.id)).toEqual(['oldkey']);
    const made = await createApiKey(store, { name: 'after the upgrade', scopes: ['tokens:read'] });
    expect((await listApiKeys(store)).map((k) => k.id).sort()).toEqual(['oldkey', made.id].sort());
    const executed = await store.db
      .withTables<{ [SERVER_MIGRATION_TABLE]: { name: string } }>()
      .selectFrom(SERVER_MIGRATION_TABLE)
      .select('name')
      .execute();
    expect(executed.map((r) => r.name)).toEqual(['0001_server_tables', '0002_connect_sessions']);
  });
});
