import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  LocalBroker,
  Vault,
  createKeyRing,
  openSqliteStore,
  openStore,
  type KeyRing,
  type LocalBrokerOptions,
  type Store,
} from '@everyauth/core';
import type { AuthServer } from './auth-server.js';

/** Where the broker says the provider redirects back to; tests hand the callback's query to the broker directly. */
export const TEST_BASE_URL = 'http://127.0.0.1:3999';
export const CLIENT_ID = 'everyauth-test';
export const CLIENT_SECRET = 'test-client-secret-0123456789abcdef';
export const redirectUriFor = (serviceId: string) => `${TEST_BASE_URL}/${serviceId}/callback`;
/** The authorization server's client for service `local`, as most test brokers configure it. */
export const LOCAL_CLIENT = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUriFor('local')] };

/** The stores every core test runs against. */
export const STORES = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORES)[number];

const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/test';

/** A PostgreSQL database of its own for one test file, dropped by `drop()`. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `everyauth_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    async drop() {
      const client = new pg.Client({ connectionString: PG_ADMIN });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface TestBroker {
  broker: LocalBroker;
  kind: StoreKind;
  dir: string;
  /** The SQLite file, or the PostgreSQL URL. */
  dbPath: string;
  ring: KeyRing;
  close(): Promise<void>;
}

/**
 * A LocalBroker on a fresh SQLite file, with service `local` (and any `extraServices`) using a
 * provider discovered from the test authorization server.
 */
export async function startTestBroker(
  server: AuthServer,
  options: Partial<Omit<LocalBrokerOptions, 'store' | 'vault'>> & {
    extraServices?: string[];
    dbPath?: string;
    ring?: KeyRing;
    kind?: StoreKind;
  } = {},
): Promise<TestBroker> {
  const kind = options.kind ?? 'sqlite';
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-test-'));
  const database = kind === 'postgres' && !options.dbPath ? await createTestDatabase() : undefined;
  const dbPath = options.dbPath ?? database?.url ?? join(dir, 'everyauth.db');
  const ring = options.ring ?? createKeyRing();
  const store: Store = kind === 'postgres' ? await openStore(dbPath) : await openSqliteStore({ path: dbPath });
  const broker = new LocalBroker({ baseUrl: TEST_BASE_URL, ...options, store, vault: Vault.fromKeyRing(ring) });
  await broker.discoverProvider('local-idp', server.issuer).catch(async (err) => {
    // Several brokers on one file: the provider is already there.
    if (!(await broker.listProviders()).some((p) => p.id === 'local-idp')) throw err;
  });
  for (const id of ['local', ...(options.extraServices ?? [])]) {
    await broker.putService({ id, providerId: 'local-idp', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  }
  return {
    broker,
    kind,
    dir,
    dbPath,
    ring,
    async close() {
      await broker.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What a flow is begun with, besides the user; `serviceId` defaults to `local`. */
export interface FlowOptions {
  serviceId?: string;
  tenantId?: string;
  tags?: Record<string, string>;
  finishedUrl?: string;
  browserBinding?: string;
}

/** Begins a flow and logs the user in and consents at the provider: the flow as started, and the callback URL (not yet fetched). */
export async function beginAndConsent(broker: LocalBroker, server: AuthServer, userId: string, options: FlowOptions = {}) {
  const { serviceId = 'local', ...rest } = options;
  const started = await broker.beginAuthorization({ serviceId, userId, ...rest });
  const callback = await server.authorize(started.url, { login: userId });
  return { serviceId, started, callback };
}

/** Runs the whole flow for one user: begin, log in and consent at the provider, callback. */
export async function authorizeUser(broker: LocalBroker, server: AuthServer, userId: string, options: FlowOptions = {}) {
  const { serviceId, callback } = await beginAndConsent(broker, server, userId, options);
  return broker.completeAuthorization(serviceId, callback.searchParams);
}
