/**
 * Three server processes on one PostgreSQL database, oidc-provider as the provider: single-flight
 * refresh across replicas, a replica killed while it holds the refresh lease, and background
 * refresh spread over replicas without double refreshes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing, openStore, type KeyRing, type Store } from '@everyauth/core';
import { createApiKey } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { CLIENT_SECRET, createTestDatabase } from '../../core/test/support/broker.js';
import { startReplicas, stopReplicas, type Replica } from './support/replicas.js';
import { hostedFlow } from './support/server.js';

let as: AuthServer;
let db: { url: string; drop(): Promise<void> };
let store: Store;
let ring: KeyRing;
let key: string;
let replicas: Replica[] = [];
const extra: Replica[][] = [];

const LEASE_MS = 3_000;

function call(r: Replica, path: string, init: RequestInit & { json?: unknown } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  return fetch(r.url + path, {
    ...init,
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    redirect: 'manual',
  });
}

async function identityOf(userId: string) {
  return store.db.selectFrom('identities').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
}

async function expire(userId: string, at = Date.now() - 1_000) {
  await store.db.updateTable('identities').set({ expires_at: at }).where('user_id', '=', userId).execute();
}

async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600, rotateRefreshTokens: true });
  db = await createTestDatabase();
  store = await openStore(db.url); // migrates once, before the replicas start
  ring = createKeyRing();
  key = (await createApiKey(store, { name: 'replicas', scopes: ['admin'] })).key;
  replicas = await startReplicas(3, { storeUrl: db.url, ring, env: { LEASE_MS: String(LEASE_MS) } });
  const base = replicas[0]!.url;
  await as.addClient({ client_id: 'replicas', client_secret: CLIENT_SECRET, redirect_uris: [`${base}/local/callback`] });
  // Configure through the API of one replica; the others see it through the database.
  expect(
    (await call(replicas[1]!, '/v1/providers/discover', { method: 'POST', json: { id: 'local-idp', issuer: as.issuer } })).status,
  ).toBe(200);
  expect(
    (
      await call(replicas[2]!, '/v1/services/local', {
        method: 'PUT',
        json: { providerId: 'local-idp', clientId: 'replicas', clientSecret: CLIENT_SECRET },
      })
    ).status,
  ).toBe(200);
  const done = await hostedFlow(
    { url: base, request: (path, init = {}) => call(replicas[0]!, path, { ...init, json: (init as { json?: unknown }).json }) },
    as,
    { userId: 'shared' },
  );
  expect(done.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await stopReplicas([...replicas, ...extra.flat()]);
  await store?.close();
  await db?.drop();
  await as?.close();
});

describe('three replicas on one PostgreSQL database', () => {
  it('300 concurrent token requests for one expired identity: one refresh at the provider, one token for all', async () => {
    const before = await identityOf('shared');
    await expire('shared');
    as.resetCounters();
    as.tokenDelayMs = 300; // the refresh takes a while, so the requests really pile up behind it
    try {
      const responses = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          call(replicas[i % 3]!, '/v1/services/local/token?userId=shared').then(async (r) => ({
            status: r.status,
            body: (await r.json()) as any,
          })),
        ),
      );
      const failures = responses.filter((r) => r.status !== 200);
      expect(failures, JSON.stringify(failures.slice(0, 3))).toEqual([]);
      const tokens = new Set(responses.map((r) => r.body.accessToken));
      expect(tokens.size).toBe(1);
      expect(as.tokenRequests.byGrant.refresh_token).toBe(1);
      const after = await identityOf('shared');
      expect(after.version).toBe(before.version + 1);
      expect(after.expires_at).toBeGreaterThan(Date.now());
    } finally {
      as.tokenDelayMs = 0;
    }
  });

  it('a replica killed with SIGKILL while it holds the lease: another takes over at once (its database session ended), the rotated refresh token is kept', async () => {
    const [survivor, witness, victim] = replicas as [Replica, Replica, Replica];
    await expire('shared');
    as.resetCounters();
    as.failNextTokenRequests(1, { delayMs: 10_000 }); // the victim's refresh hangs at the provider
    const victimCall = call(victim, '/v1/services/local/token?userId=shared').catch((err: Error) => err);
    await waitFor(() => as.tokenRequests.total === 1);
    const held = await identityOf('shared');
    expect(held.lease_owner).not.toBeNull();
    victim.child.kill('SIGKILL');
    expect(await victimCall).toBeInstanceOf(Error);
    await victim.exited;

    const started = Date.now();
    const r = await call(survivor, '/v1/services/local/token?userId=shared');
    const body = (await r.json()) as any;
    expect(r.status, JSON.stringify(body)).toBe(200);
    // The dead replica's lock went with its database session: no wait for its lease to run out.
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(as.tokenRequests.byGrant.refresh_token).toBe(2);
    const after = await identityOf('shared');
    expect(after).toMatchObject({ status: 'active', version: held.version + 1, lease_owner: null });

    // The refresh token the survivor got was stored: the next refresh (another replica) uses it successfully.
    const next = await call(witness, '/v1/services/local/token?userId=shared&force=true');
    const nextBody = (await next.json()) as any;
    expect(next.status, JSON.stringify(nextBody)).toBe(200);
    expect(nextBody.accessToken).not.toBe(body.accessToken);
    expect(as.tokenRequests.byGrant.refresh_token).toBe(3);
    const events = (await (await call(witness, `/v1/events?identityId=${after.id}`)).json()) as any[];
    expect(events.map((e) => e.type)).not.toContain('identity.needs_reauth');
  });

  it('background refresh spreads over replicas and refreshes each identity once', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `bg-${i}`);
    for (const userId of users) {
      await hostedFlow(
        {
          url: replicas[0]!.url,
          request: (path, init = {}) => call(replicas[0]!, path, { ...init, json: (init as { json?: unknown }).json }),
        },
        as,
        { userId },
      );
    }
    await stopReplicas(replicas); // frees the CPU for the new ones; their work is done
    const background = await startReplicas(3, {
      storeUrl: db.url,
      ring,
      env: { LEASE_MS: String(LEASE_MS), BACKGROUND_MS: '100', AHEAD_MS: '60000', BASE_URL: replicas[0]!.url },
    });
    extra.push(background);
    const versions = new Map<string, number>();
    for (const u of users) versions.set(u, (await identityOf(u)).version);
    as.resetCounters();
    await store.db
      .updateTable('identities')
      .set({ expires_at: Date.now() + 30_000, updated_at: Date.now() - 3_600_000 })
      .where('user_id', 'like', 'bg-%')
      .execute();
    await waitFor(async () => {
      const rows = await store.db.selectFrom('identities').select(['user_id', 'version']).where('user_id', 'like', 'bg-%').execute();
      return rows.every((r) => r.version > versions.get(r.user_id)!);
    });
    await new Promise((r) => setTimeout(r, 500)); // time for any double refresh to show
    const rows = await store.db
      .selectFrom('identities')
      .select(['user_id', 'version', 'expires_at', 'status'])
      .where('user_id', 'like', 'bg-%')
      .execute();
    for (const r of rows) {
      expect(r.version, r.user_id).toBe(versions.get(r.user_id)! + 1);
      expect(r.status).toBe('active');
      expect(r.expires_at!).toBeGreaterThan(Date.now() + 600_000);
    }
    expect(as.tokenRequests.byGrant.refresh_token).toBe(users.length);
    const perReplica = await Promise.all(
      background.map(async (r) => {
        const text = await (await fetch(`${r.url}/metrics`)).text();
        return Number(/everyauth_refreshes_total\{outcome="refreshed"\} (\d+)/.exec(text)?.[1] ?? 0);
      }),
    );
    // Each replica counts the refreshes it made itself: together, each identity exactly once.
    expect(perReplica.reduce((a, b) => a + b, 0)).toBe(users.length);
  });
});
