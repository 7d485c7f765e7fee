/**
 * PostgreSQL restarted under load, on a PostgreSQL instance of this test's own (restarting the
 * machine's cluster would break the other test files running in parallel): requests fail cleanly
 * while it is down, recover after, and no identity is lost or corrupted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing, openStore, type Store } from '@everyauth/core';
import { createApiKey } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { CLIENT_SECRET } from '../../core/test/support/broker.js';
import { startPostgres, type PostgresInstance } from './support/postgres.js';
import { startReplicas, stopReplicas, type Replica } from './support/replicas.js';
import { hostedFlow } from './support/server.js';

let as: AuthServer;
let pg: PostgresInstance;
let store: Store;
let key: string;
let replicas: Replica[] = [];
const USERS = Array.from({ length: 8 }, (_, i) => `user-${i}`);

const call = (r: Replica, path: string, init: RequestInit & { json?: unknown } = {}) =>
  fetch(r.url + path, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.json === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    redirect: 'manual',
    signal: AbortSignal.timeout(20_000),
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600, rotateRefreshTokens: true });
  pg = await startPostgres();
  store = await openStore(pg.url);
  key = (await createApiKey(store, { name: 'restart', scopes: ['admin'] })).key;
  await store.close(); // this test's own connections must not hold anything across the restart
  replicas = await startReplicas(2, { storeUrl: pg.url, ring: createKeyRing(), env: { LEASE_MS: '3000' } });
  const r0 = replicas[0]!;
  await as.addClient({ client_id: 'restart', client_secret: CLIENT_SECRET, redirect_uris: [`${r0.url}/local/callback`] });
  expect((await call(r0, '/v1/providers/discover', { method: 'POST', json: { id: 'local-idp', issuer: as.issuer } })).status).toBe(200);
  expect(
    (
      await call(r0, '/v1/services/local', {
        method: 'PUT',
        json: { providerId: 'local-idp', clientId: 'restart', clientSecret: CLIENT_SECRET },
      })
    ).status,
  ).toBe(200);
  for (const userId of USERS) {
    const done = await hostedFlow(
      { url: r0.url, request: (path, init = {}) => call(r0, path, init as RequestInit & { json?: unknown }) },
      as,
      { userId },
    );
    expect(done.status).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await stopReplicas(replicas);
  await pg?.destroy();
  await as?.close();
});

interface Outcome {
  at: number;
  status: number;
  body: any;
}

describe('PostgreSQL restarted under load', () => {
  it('fails requests cleanly while it is down, recovers after, and keeps every identity intact', async () => {
    const outcomes: Outcome[] = [];
    let running = true;
    // Four clients, each asking for tokens in turn; every 5th request forces a refresh (rotating the refresh token).
    const load = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; running; i++) {
        const userId = USERS[(w + i) % USERS.length]!;
        const force = i % 5 === 0 ? '&force=true' : '';
        const at = Date.now();
        try {
          const r = await call(replicas[(w + i) % 2]!, `/v1/services/local/token?userId=${userId}${force}`);
          outcomes.push({ at, status: r.status, body: await r.json() });
        } catch (err) {
          outcomes.push({ at, status: 0, body: String(err) });
        }
        await sleep(10);
      }
    });

    await sleep(1_000);
    const downAt = Date.now();
    await pg.stop();
    await sleep(1_500);
    const health = await fetch(`${replicas[0]!.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'unavailable' });
    const upAt = Date.now();
    await pg.start();
    // Recovery: a request succeeds on each replica within a few seconds.
    for (const r of replicas) {
      const deadline = Date.now() + 15_000;
      while ((await fetch(`${r.url}/health`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('replica did not recover');
        await sleep(100);
      }
    }
    const recoveredAt = Date.now();
    await sleep(1_000);
    running = false;
    await Promise.all(load);

    // While it was down: clean errors, never a hang or a dropped connection.
    const during = outcomes.filter((o) => o.at > downAt + 200 && o.at < upAt);
    expect(during.length).toBeGreaterThan(0);
    for (const o of during) {
      expect(o.status, JSON.stringify(o)).toBeGreaterThanOrEqual(500);
      expect(o.body, JSON.stringify(o)).toMatchObject({ retryable: true });
      expect(['store_unavailable', 'provider_unavailable']).toContain(o.body.error);
    }
    for (const o of outcomes) {
      expect(o.status, JSON.stringify(o)).not.toBe(0);
      expect([200, 503], JSON.stringify(o)).toContain(o.status);
    }
    // After: every request succeeds.
    const after = outcomes.filter((o) => o.at > recoveredAt);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((o) => o.status === 200)).toBe(true);

    // No identity lost or corrupted: all there, active, and each refresh token still works at the provider.
    const list = (await (await call(replicas[1]!, '/v1/identities?serviceId=local')).json()) as any;
    expect(list.items.map((i: any) => i.userId).sort()).toEqual([...USERS].sort());
    for (const userId of USERS) {
      const r = await call(replicas[0]!, `/v1/services/local/token?userId=${userId}&force=true`);
      const body = (await r.json()) as any;
      expect(r.status, `${userId}: ${JSON.stringify(body)}`).toBe(200);
      expect((await as.userinfo(body.accessToken)).status).not.toBe(401);
    }
  });

  it('keeps refreshed tokens that arrive while PostgreSQL is down: the fenced write is retried once it is back', async () => {
    const before = as.tokenRequests.total;
    as.failNextTokenRequests(1, { delayMs: 1_500 }); // the provider answers while the database is down
    const pending = call(replicas[0]!, '/v1/services/local/token?userId=user-0&force=true');
    const deadline = Date.now() + 10_000;
    while (as.tokenRequests.total === before) {
      if (Date.now() > deadline) throw new Error('the refresh did not reach the provider');
      await sleep(20);
    }
    await pg.stop();
    await sleep(2_000);
    await pg.start();
    const r = await pending;
    const body = (await r.json()) as any;
    expect(r.status, JSON.stringify(body)).toBe(200);
    // The rotated refresh token was stored: the next refresh, on the other replica, works.
    const next = await call(replicas[1]!, '/v1/services/local/token?userId=user-0&force=true');
    const nextBody = (await next.json()) as any;
    expect(next.status, JSON.stringify(nextBody)).toBe(200);
    expect(nextBody.accessToken).not.toBe(body.accessToken);
  });
});
