import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBroker, Vault, createKeyRing, openSqliteStore, type KeyRing, type LocalBrokerOptions } from '@everyauth/core';
import type { AuthServer } from './auth-server.js';

/** Where the broker says the provider redirects back to; tests hand the callback's query to the broker directly. */
export const TEST_BASE_URL = 'http://127.0.0.1:3999';
export const CLIENT_ID = 'everyauth-test';
export const CLIENT_SECRET = 'test-client-secret-0123456789abcdef';
export const redirectUriFor = (serviceId: string) => `${TEST_BASE_URL}/${serviceId}/callback`;

export interface TestBroker {
  broker: LocalBroker;
  dir: string;
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
  options: Partial<Omit<LocalBrokerOptions, 'store' | 'vault'>> & { extraServices?: string[]; dbPath?: string; ring?: KeyRing } = {},
): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-test-'));
  const dbPath = options.dbPath ?? join(dir, 'everyauth.db');
  const ring = options.ring ?? createKeyRing();
  const store = await openSqliteStore({ path: dbPath });
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
    dir,
    dbPath,
    ring,
    async close() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the whole flow for one user: begin, log in and consent at the provider, callback. */
export async function authorizeUser(broker: LocalBroker, server: AuthServer, userId: string, extra: { serviceId?: string; tenantId?: string; tags?: Record<string, string>; finishedUrl?: string } = {}) {
  const serviceId = extra.serviceId ?? 'local';
  const started = await broker.beginAuthorization({ serviceId, userId, tenantId: extra.tenantId, tags: extra.tags, finishedUrl: extra.finishedUrl });
  const callback = await server.authorize(started.url, { login: userId });
  return broker.completeAuthorization(serviceId, callback.searchParams);
}
