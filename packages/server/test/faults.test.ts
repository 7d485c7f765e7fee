/**
 * Three server replicas on one PostgreSQL database, in front of a provider whose token endpoint
 * fails, drops connections, hangs and recovers on cue (support/faulty-provider.ts): what callers
 * on every replica get, how many requests reach the provider, and that the identity refreshes
 * once the provider is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { createTestDatabase } from '../../core/test/support/broker.js';
import { startFaultyTokenEndpoint, type FaultyTokenEndpoint } from './support/faulty-provider.js';
import { startFleet, type Fleet } from './support/fleet.js';

let as: AuthServer;
let db: { url: string; drop(): Promise<void> };
let endpoint: FaultyTokenEndpoint;
let fleet: Fleet;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600, rotateRefreshTokens: true });
  endpoint = await startFaultyTokenEndpoint(as.tokenEndpoint);
  db = await createTestDatabase();
  fleet = await startFleet(as, { storeUrl: db.url, count: 3, refreshUrl: endpoint.url, clientId: 'faults' });
  for (const user of ['failing', 'dropping']) await fleet.connect(user);
}, 120_000);

afterAll(async () => {
  await fleet?.close();
  await endpoint?.close();
  await db?.drop();
  await as?.close();
});

const identityOf = (userId: string) =>
  fleet.store.db.selectFrom('identities').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();

const expire = (userId: string) =>
  fleet.store.db
    .updateTable('identities')
    .set({ expires_at: Date.now() - 1_000 })
    .where('user_id', '=', userId)
    .execute();

/** A token read on a replica: status, body, Retry-After and how long it took. */
async function read(replica: number, userId: string) {
  const started = Date.now();
  const r = await fleet.call(fleet.replicas[replica]!, `/v1/services/local/token?userId=${userId}`);
  return { status: r.status, body: (await r.json()) as any, retryAfter: r.headers.get('retry-after'), ms: Date.now() - started };
}

describe('a provider that fails, then recovers', () => {
  it.each([
    ['fail', 'failing'],
    ['drop', 'dropping'],
  ] as const)(
    '%s: every replica answers provider_unavailable, the row is kept; once it is up, the identity refreshes',
    async (mode, user) => {
      const before = await identityOf(user);
      await expire(user);
      endpoint.resetCounts();
      endpoint.mode = mode;
      try {
        for (const replica of [0, 1, 2]) {
          const answer = await read(replica, user);
          expect(answer.status, JSON.stringify(answer.body)).toBe(503);
          expect(answer.body).toMatchObject({ error: 'provider_unavailable', retryable: true });
          expect(answer.ms).toBeLessThan(8_000);
        }
        expect(endpoint.requests.byMode[mode]).toBeGreaterThan(0);
        expect(await identityOf(user)).toMatchObject({ status: 'active', version: before.version, lease_owner: null });
      } finally {
        endpoint.mode = 'up';
      }
      const recovered = await read(1, user);
      expect(recovered.status, JSON.stringify(recovered.body)).toBe(200);
      expect(await identityOf(user)).toMatchObject({ status: 'active', version: before.version + 1 });
      expect(endpoint.requests.byMode.up).toBe(1);
    },
  );
});
