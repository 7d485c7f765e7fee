/**
 * Three server replicas on one PostgreSQL database, in front of a provider whose token endpoint
 * fails, drops connections, hangs and recovers on cue (support/faulty-provider.ts): what callers
 * on every replica get, how many requests reach the provider, and that the identity refreshes
 * once the provider is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderUnavailable, RemoteBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { createTestDatabase } from '../../core/test/support/broker.js';
import { startFaultyTokenEndpoint, type FaultyTokenEndpoint } from './support/faulty-provider.js';
import { startFleet, type Fleet } from './support/fleet.js';
import type { Replica } from './support/replicas.js';

let as: AuthServer;
let db: { url: string; drop(): Promise<void> };
let endpoint: FaultyTokenEndpoint;
let fleet: Fleet;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600, rotateRefreshTokens: true });
  endpoint = await startFaultyTokenEndpoint(as.tokenEndpoint);
  db = await createTestDatabase();
  fleet = await startFleet(as, { storeUrl: db.url, count: 3, refreshUrl: endpoint.url, clientId: 'faults' });
  for (const user of ['failing', 'dropping', 'hanging', 'orphaned', 'sdk']) await fleet.connect(user);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function waitFor(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

/** The read deadline of the replicas (the default): every answer must come within it, plus the trip. */
const DEADLINE_MS = 8_000;
const TRIP_MS = 1_500;

/** A token read on a replica: status, body, Retry-After and how long it took. */
async function read(replica: number | Replica, userId: string) {
  const started = Date.now();
  const r = await fleet.call(typeof replica === 'number' ? fleet.replicas[replica]! : replica, `/v1/services/local/token?userId=${userId}`);
  return { status: r.status, body: (await r.json()) as any, retryAfter: r.headers.get('retry-after'), ms: Date.now() - started };
}

describe('a provider that fails, then recovers', () => {
  it.each([
    ['fail', 'failing', '5xx'],
    ['drop', 'dropping', 'network'],
  ] as const)(
    '%s: the first replica retries and records the failure; the others answer it at once without asking; after the cool-down the identity refreshes',
    async (mode, user, reason) => {
      const before = await identityOf(user);
      await expire(user);
      endpoint.resetCounts();
      endpoint.mode = mode;
      try {
        for (const replica of [0, 1, 2]) {
          const answer = await read(replica, user);
          expect(answer.status, JSON.stringify(answer.body)).toBe(503);
          expect(answer.body).toMatchObject({ error: 'provider_unavailable', providerId: 'faulty-idp', reason, retryable: true });
          expect(Number(answer.retryAfter)).toBeGreaterThan(0);
          expect(answer.ms).toBeLessThan(DEADLINE_MS + TRIP_MS);
        }
        // Three attempts on the first replica (the replicas' policy); the other two asked nobody.
        expect(endpoint.requests.byMode[mode]).toBe(3);
        expect(await identityOf(user)).toMatchObject({
          status: 'active',
          version: before.version,
          lease_owner: null,
          refresh_failure: reason,
          refresh_failures: 1,
        });
      } finally {
        endpoint.mode = 'up';
      }
      const { refresh_retry_at } = await identityOf(user);
      // A timer may fire a millisecond before Date.now() reaches its time: wait a little past the cool-down.
      await sleep(refresh_retry_at! - Date.now() + 5);
      const recovered = await read(1, user);
      expect(recovered.status, JSON.stringify(recovered.body)).toBe(200);
      expect(await identityOf(user)).toMatchObject({
        status: 'active',
        version: before.version + 1,
        refresh_failures: 0,
        refresh_failure: null,
      });
      expect(endpoint.requests.byMode.up).toBe(1);
    },
  );
});

describe('a provider that hangs for 20 s, then recovers', () => {
  it('30 callers over three replicas: each answered within the deadline, a bounded number of requests reach the provider, and the identity refreshes after', async () => {
    const user = 'hanging';
    const before = await identityOf(user);
    await expire(user);
    endpoint.resetCounts();
    endpoint.mode = 'hang';
    const recovery = sleep(20_000).then(() => (endpoint.mode = 'up'));
    // Ten callers when the hang starts, ten 6 s into it, ten 12 s into it; round robin over the replicas.
    const answers = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        await sleep(Math.floor(i / 10) * 6_000);
        return read(i % 3, user);
      }),
    );
    const hangRequests = endpoint.requests.byMode.hang;
    await recovery;
    console.log(
      `hang: ${answers.length} callers, slowest answer ${Math.max(...answers.map((a) => a.ms))} ms, ${hangRequests} requests reached the hanging provider`,
    );
    for (const answer of answers) {
      expect(answer.ms, `${answer.status} ${answer.body.error ?? 'token'}`).toBeLessThan(DEADLINE_MS + TRIP_MS);
      if (answer.status === 200) continue; // a probe that the recovery answered in time
      expect(answer.status, JSON.stringify(answer.body)).toBe(503);
      expect(answer.body).toMatchObject({ error: 'provider_unavailable', providerId: 'faulty-idp', reason: 'timeout', retryable: true });
      expect(Number(answer.retryAfter)).toBeGreaterThan(0);
    }
    // One probe when the hang starts, at most one per cool-down after: not one chain per replica and caller.
    expect(hangRequests).toBeGreaterThanOrEqual(1);
    expect(hangRequests).toBeLessThanOrEqual(3);

    await waitFor(async () => (await read(2, user)).status === 200, 30_000);
    expect(await identityOf(user)).toMatchObject({ status: 'active', version: before.version + 1, lease_owner: null });
  }, 90_000);
});

describe('the SDK never gives up first', () => {
  it('a RemoteBroker with a 3 s timeout and a hanging provider: provider_unavailable (timeout) before its own timeout, not server_unavailable', async () => {
    const sdk = new RemoteBroker({ server: fleet.replicas[0]!.url, apiKey: fleet.key, timeoutMs: 3_000 });
    await expire('sdk');
    endpoint.mode = 'hang';
    try {
      const started = Date.now();
      const err = await sdk.getIdentity('local', 'sdk').catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(err).toMatchObject({ code: 'provider_unavailable', providerId: 'faulty-idp', reason: 'timeout' });
      expect((err as ProviderUnavailable).retryAfterMs).toBeGreaterThan(0);
      // A read may ask for less than the SDK's timeout; the server answers within that too.
      const patient = new RemoteBroker({ server: fleet.replicas[1]!.url, apiKey: fleet.key });
      const again = Date.now();
      const shorter = await patient.getIdentity('local', 'sdk', { deadlineMs: 2_500 }).catch((e: unknown) => e);
      expect(Date.now() - again).toBeLessThan(2_500);
      expect(shorter).toMatchObject({ code: 'provider_unavailable', providerId: 'faulty-idp' });
    } finally {
      endpoint.mode = 'up';
    }
  });
});

describe('a replica dies holding the refresh lease', () => {
  it('SIGKILL while its refresh hangs: a caller on another replica takes over within 2 s, and the identity refreshes', async () => {
    const user = 'orphaned';
    const [victim] = await fleet.add(1);
    const before = await identityOf(user);
    await expire(user);
    endpoint.resetCounts();
    endpoint.mode = 'hang';
    const victimRead = read(victim!, user).catch((err: Error) => err);
    await waitFor(() => endpoint.held === 1); // the victim holds the lease, its request is at the provider
    expect((await identityOf(user)).lease_owner).not.toBeNull();
    const waiting = read(0, user); // waits for the victim's refresh
    await sleep(200);
    victim!.child.kill('SIGKILL');
    await victim!.exited;
    const killedAt = Date.now();
    endpoint.mode = 'up'; // the victim's held request is dropped: its caller is gone
    const answer = await waiting;
    const tookOverMs = Date.now() - killedAt;
    console.log(`takeover: answered ${tookOverMs} ms after the holder died`);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(tookOverMs).toBeLessThan(2_000);
    expect(await victimRead).toBeInstanceOf(Error);
    expect(await identityOf(user)).toMatchObject({ status: 'active', version: before.version + 1, lease_owner: null });
    // The refresh token stored by the survivor works: the next refresh succeeds too.
    const again = await fleet.call(fleet.replicas[1]!, `/v1/services/local/token?userId=${user}&force=true`);
    expect(again.status).toBe(200);
    expect(await identityOf(user)).toMatchObject({ status: 'active', version: before.version + 2 });
  }, 60_000);
});
