/**
 * An EveryAuth server for tests, in this process: a LocalBroker on a fresh SQLite file or
 * PostgreSQL database, served by buildServer on a free loopback port, with the test
 * authorization server as provider `local-idp` and service `local`, and two API keys.
 * Usable from other packages' tests (express runs its suite remote with it) by relative import.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  LocalBroker,
  RemoteBroker,
  Vault,
  createKeyRing,
  openStore,
  type KeyRing,
  type LocalBrokerOptions,
  type Store,
} from '@everyauth/core';
import { buildServer, createApiKey, type BuildServerOptions } from '@everyauth/server';
import type { AuthServer } from '../../../core/test/support/auth-server.js';
import { CLIENT_SECRET, createTestDatabase } from '../../../core/test/support/broker.js';

export interface TestServer {
  app: FastifyInstance;
  url: string;
  store: Store;
  broker: LocalBroker;
  ring: KeyRing;
  /** The SQLite file or PostgreSQL URL. */
  dbPath: string;
  adminKey: string;
  readerKey: string;
  clientId: string;
  /** A RemoteBroker on this server with the admin key. */
  remote(key?: string): RemoteBroker;
  /** fetch on this server with a key (admin unless told otherwise; `null` sends none). */
  request(path: string, init?: RequestInit & { key?: string | null; json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface TestServerOptions {
  kind?: 'sqlite' | 'postgres';
  server?: Partial<Omit<BuildServerOptions, 'broker'>>;
  broker?: Partial<Omit<LocalBrokerOptions, 'store' | 'vault' | 'baseUrl' | 'onEvent'>>;
  /** Services to create on the test provider (default ['local']). */
  services?: string[];
}

export async function startTestServer(as: AuthServer, options: TestServerOptions = {}): Promise<TestServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-server-test-'));
  const database = options.kind === 'postgres' ? await createTestDatabase() : undefined;
  const dbPath = database?.url ?? join(dir, 'everyauth.db');
  const ring = createKeyRing();
  const vault = Vault.fromKeyRing(ring);
  const store = await openStore(dbPath);
  let broker!: LocalBroker;
  const app = await buildServer({
    logLevel: 'silent',
    backgroundRefresh: false,
    lifecycle: false,
    ...options.server,
    broker: (onEvent) =>
      (broker = new LocalBroker({ logger: pino({ level: 'silent' }), ...options.broker, store, vault, baseUrl: url, onEvent })),
  });
  await app.listen({ port, host: '127.0.0.1' });

  const services = options.services ?? ['local'];
  const clientId = `everyauth-server-${port}`;
  await as.addClient({ client_id: clientId, client_secret: CLIENT_SECRET, redirect_uris: services.map((s) => broker.redirectUrl(s)) });
  await broker.discoverProvider('local-idp', as.issuer);
  for (const id of services) await broker.putService({ id, providerId: 'local-idp', clientId, clientSecret: CLIENT_SECRET });
  const admin = await createApiKey(store, { name: 'test admin', scopes: ['admin'] });
  const reader = await createApiKey(store, { name: 'test reader', scopes: ['tokens:read'] });

  return {
    app,
    url,
    store,
    broker,
    ring,
    dbPath,
    adminKey: admin.key,
    readerKey: reader.key,
    clientId,
    remote: (key = admin.key) => new RemoteBroker({ server: url, apiKey: key }),
    request(path, init = {}) {
      const { key = admin.key, json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key !== null) headers.set('authorization', `Bearer ${key}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(url + path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body, redirect: 'manual' });
    },
    async close() {
      await app.close();
      await store.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The hosted flow as a browser would run it: ask for a session, open its link (keeping the
 * cookie), log in at the provider, follow the callback. Returns the final redirect and the cookie jar.
 */
export async function hostedFlow(
  t: Pick<TestServer, 'request' | 'url'>,
  as: AuthServer,
  input: { serviceId?: string; userId: string; tenantId?: string; tags?: Record<string, string>; finishedUrl?: string },
  browser: { login?: string; dropCookie?: boolean; key?: string } = {},
): Promise<{ status: number; location: string | null; body: string }> {
  const session = await t.request('/v1/sessions', { method: 'POST', key: browser.key, json: { serviceId: 'local', ...input } });
  if (session.status !== 201) throw new Error(`POST /v1/sessions: ${session.status} ${await session.text()}`);
  const { url } = (await session.json()) as { url: string };
  const start = await fetch(url, { redirect: 'manual' });
  const cookie = start.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const providerUrl = start.headers.get('location');
  if (start.status !== 302 || !providerUrl) throw new Error(`start: ${start.status} ${await start.text()}`);
  const callback = await as.authorize(providerUrl, { login: browser.login ?? input.userId });
  const done = await fetch(callback, { redirect: 'manual', headers: browser.dropCookie ? {} : { cookie } });
  return { status: done.status, location: done.headers.get('location'), body: await done.text() };
}
