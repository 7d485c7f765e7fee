import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderUnavailable, ReauthorizationRequired, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { LOCAL_CLIENT, CLIENT_SECRET, STORES, authorizeUser, startTestBroker, type TestBroker } from './support/broker.js';

let server: AuthServer;
const ACCESS_TOKEN_TTL = 2;

/** A row as it would be without a recorded refresh failure. */
const withoutFailure = <T extends object>(row: T): T => ({
  ...row,
  refresh_failed_at: null,
  refresh_failure: null,
  refresh_retry_at: null,
  refresh_failures: 0,
});

beforeAll(async () => {
  server = await startAuthServer({
    clients: [LOCAL_CLIENT],
    accessTokenTtl: ACCESS_TOKEN_TTL,
    rotateRefreshTokens: true,
  });
});
afterAll(() => server?.close());

describe.each(STORES)('on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    t = await startTestBroker(server, {
      kind,
      refresh: { marginMs: 500, attempts: 3, baseDelayMs: 20, maxDelayMs: 100, coolDownMs: 300 },
      providerTimeoutMs: 500,
    });
    broker = t.broker;
  });
  afterAll(() => t?.close());
  beforeEach(() => server.resetCounters());

  /** The refresh token the vault holds for an identity (tests only). */
  async function storedRefreshToken(userId: string): Promise<string | undefined> {
    const summary = await broker.findIdentity('local', userId);
    const row = await broker.store.getIdentity(summary!.id);
    return JSON.parse(broker.vault.open(row!.tokens, `identity:${row!.id}`)).r;
  }

  /** Makes the stored token look expired without waiting for it (the provider still honours it). */
  async function expire(userId: string) {
    const summary = await broker.findIdentity('local', userId);
    await broker.store.db
      .updateTable('identities')
      .set({ expires_at: Date.now() - 1000 })
      .where('id', '=', summary!.id)
      .execute();
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

  describe('refresh', () => {
    it('refreshes after expiry, stores the rotated refresh token, and the provider rejects the old one', async () => {
      await authorizeUser(broker, server, 'rita');
      const first = await broker.getIdentity('local', 'rita');
      const oldRefresh = await storedRefreshToken('rita');
      expect(server.tokenRequests.total).toBe(1); // the code exchange only

      await sleep(ACCESS_TOKEN_TTL * 1000 + 200);
      expect((await server.userinfo(first!.accessToken)).status).toBe(401);

      const second = await broker.getIdentity('local', 'rita');
      expect(second!.accessToken).not.toBe(first!.accessToken);
      expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
      expect((await server.userinfo(second!.accessToken)).status).toBe(200);

      const newRefresh = await storedRefreshToken('rita');
      expect(newRefresh).toBeTruthy();
      expect(newRefresh).not.toBe(oldRefresh);
      expect(await server.isRefreshTokenActive(oldRefresh!)).toBe(false);
      expect(await server.isRefreshTokenActive(newRefresh!)).toBe(true);

      const events = await broker.listEvents({ identityId: second!.identityId });
      expect(events.map((e) => e.type)).toContain('identity.refreshed');
    });

    it('200 concurrent getIdentity calls on an expired token make one token request, and all get the same token', async () => {
      await authorizeUser(broker, server, 'sam');
      await expire('sam');
      server.resetCounters();
      const results = await Promise.all(Array.from({ length: 200 }, () => broker.getIdentity('local', 'sam')));
      expect(server.tokenRequests.total).toBe(1);
      expect(new Set(results.map((r) => r!.accessToken)).size).toBe(1);
      expect((await server.userinfo(results[0]!.accessToken)).status).toBe(200);
    });

    it('force refreshes a valid token', async () => {
      const before = await broker.getIdentity('local', 'sam');
      const after = await broker.getIdentity('local', 'sam', { force: true });
      expect(after!.accessToken).not.toBe(before!.accessToken);
      expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
    });

    it('the next refresh after a change to the service uses the changed service (the cached client is not reused)', async () => {
      await broker.getIdentity('local', 'sam', { force: true }); // the refresher has the service's client now
      await broker.putService({ id: 'local', clientSecret: 'not-the-secret' });
      try {
        await expect(broker.getIdentity('local', 'sam', { force: true })).rejects.toThrow();
      } finally {
        await broker.putService({ id: 'local', clientSecret: CLIENT_SECRET });
      }
      const after = await broker.getIdentity('local', 'sam', { force: true });
      expect((await server.userinfo(after!.accessToken)).status).toBe(200);
    });

    it('invalid_grant marks the identity needs_reauth, raises a typed error, and keeps the old row', async () => {
      await authorizeUser(broker, server, 'tom');
      const summary = await broker.findIdentity('local', 'tom');
      const before = await broker.store.getIdentity(summary!.id);
      await server.revokeGrantsFor('tom');
      await expire('tom');
      const expired = await broker.store.getIdentity(summary!.id);

      const err = await broker.getIdentity('local', 'tom').catch((e) => e);
      expect(err).toBeInstanceOf(ReauthorizationRequired);
      expect(err).toMatchObject({ serviceId: 'local', userId: 'tom', identityId: summary!.id });
      const after = await broker.store.getIdentity(summary!.id);
      expect(after!.status).toBe('needs_reauth');
      expect(after!.tokens).toBe(before!.tokens);
      expect(after!.version).toBe(expired!.version);
      expect(after!.lease_owner).toBeNull();
      // Asking again does not go back to the provider.
      server.resetCounters();
      await expect(broker.getIdentity('local', 'tom')).rejects.toBeInstanceOf(ReauthorizationRequired);
      expect(server.tokenRequests.total).toBe(0);
      const types = (await broker.listEvents({ identityId: summary!.id })).map((e) => e.type);
      expect(types).toContain('identity.needs_reauth');
      // Authorizing again makes it active.
      await authorizeUser(broker, server, 'tom');
      expect((await broker.findIdentity('local', 'tom'))!.status).toBe('active');
    });

    it("a failure that comes back after the lease was lost records nothing: the new holder's tokens stand", async () => {
      await authorizeUser(broker, server, 'tina');
      const summary = await broker.findIdentity('local', 'tina');
      await expire('tina');
      const expired = (await broker.store.getIdentity(summary!.id))!;
      // invalid_grant, but only after another holder took the lease over and wrote new tokens (as it
      // would have, had it rotated the refresh token this request still carries).
      server.failNextTokenRequests(1, { status: 400, body: { error: 'invalid_grant' }, delayMs: 300 });
      const read = broker.getIdentity('local', 'tina').catch((e: unknown) => e);
      await sleep(100);
      await broker.store.db
        .updateTable('identities')
        .set({ lease_owner: 'another-holder', version: expired.version + 1, expires_at: Date.now() + 3_600_000 })
        .where('id', '=', summary!.id)
        .execute();
      expect(await read).toBeInstanceOf(ReauthorizationRequired); // this caller's own answer
      const after = await broker.store.getIdentity(summary!.id);
      expect(after).toMatchObject({ status: 'active', version: expired.version + 1, failing_since: null, refresh_failure: null });
      const types = (await broker.listEvents({ identityId: summary!.id })).map((e) => e.type);
      expect(types).not.toContain('identity.needs_reauth');
    });

    it('provider 500s are retried, then a retryable error; nothing is overwritten', async () => {
      await authorizeUser(broker, server, 'uma');
      await expire('uma');
      const summary = await broker.findIdentity('local', 'uma');
      const before = await broker.store.getIdentity(summary!.id);
      server.resetCounters();
      server.failNextTokenRequests(3, { status: 500, body: { error: 'server_error' } });
      const err = await broker.getIdentity('local', 'uma').catch((e) => e);
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(err).toMatchObject({ retryable: true, providerId: 'local-idp', reason: '5xx' });
      expect(err.retryAfterMs).toBeGreaterThan(0);
      expect(server.tokenRequests.total).toBe(3);
      const after = (await broker.store.getIdentity(summary!.id))!;
      expect({ ...withoutFailure(after), lease_owner: null, lease_until: null, failing_since: null }).toEqual(before);
      // The failure starts the dead-state clock; the next success stops it.
      expect(after.failing_since).toBeGreaterThan(0);
      expect(after).toMatchObject({ lease_owner: null, status: 'active', refresh_failure: '5xx', refresh_failures: 1 });
      // During the cool-down every caller gets the recorded failure, and the provider is not asked.
      const shared = await broker.getIdentity('local', 'uma').catch((e) => e);
      expect(shared).toMatchObject({ code: 'provider_unavailable', reason: '5xx' });
      expect(server.tokenRequests.total).toBe(3);
      // The provider is back: after the cool-down the next call refreshes with the same refresh token.
      // A timer may fire a millisecond before Date.now() reaches its time: wait a little past the cool-down.
      await sleep(after.refresh_retry_at! - Date.now() + 5);
      const fresh = await broker.getIdentity('local', 'uma');
      expect(withoutFailure((await broker.store.getIdentity(summary!.id))!)).toEqual(await broker.store.getIdentity(summary!.id));
      expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
      expect((await broker.store.getIdentity(summary!.id))!.failing_since).toBeNull();
      const events = await broker.listEvents({ identityId: summary!.id });
      // Events in one millisecond have no order among themselves (their ids are time, then random).
      const types = events.map((e) => e.type);
      expect(types.at(-3)).toBe('identity.refresh_failed');
      expect(types.slice(-2).sort()).toEqual(['identity.recovered', 'identity.refreshed']);
    });

    it('a 500 then success: retried within one call', async () => {
      await authorizeUser(broker, server, 'vic');
      await expire('vic');
      server.resetCounters();
      server.failNextTokenRequests(1, { status: 503, body: 'unavailable', headers: { 'content-type': 'text/plain' } });
      const fresh = await broker.getIdentity('local', 'vic');
      expect(server.tokenRequests.total).toBe(2);
      expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
    });

    it('a timeout is not retried at once: one request, then a retryable error naming the cause', async () => {
      await authorizeUser(broker, server, 'wes');
      await expire('wes');
      server.resetCounters();
      server.failNextTokenRequests(3, { delayMs: 1500 });
      const err = await broker.getIdentity('local', 'wes').catch((e) => e);
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(err).toMatchObject({ reason: 'timeout', message: expect.stringMatching(/did not answer in time/) });
      expect(server.tokenRequests.total).toBe(1);
    });

    it('while the provider is down, a token that is still valid is returned', async () => {
      // A broker of its own with a wide margin, so the token stays valid through three failed
      // attempts however loaded the machine is.
      const wide = await startTestBroker(server, {
        kind,
        refresh: { marginMs: 60_000, attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
        providerTimeoutMs: 500,
      });
      try {
        await authorizeUser(wide.broker, server, 'xia');
        const current = await wide.broker.getIdentity('local', 'xia');
        // Inside the refresh margin but not yet expired.
        const summary = await wide.broker.findIdentity('local', 'xia');
        await wide.broker.store.db
          .updateTable('identities')
          .set({ expires_at: Date.now() + 30_000, updated_at: Date.now() - 10 * 60_000 })
          .where('id', '=', summary!.id)
          .execute();
        server.failNextTokenRequests(3, { status: 502 });
        const during = await wide.broker.getIdentity('local', 'xia');
        expect(during!.accessToken).toBe(current!.accessToken);
        expect(server.tokenRequests.total).toBeGreaterThanOrEqual(3);
        const types = (await wide.broker.listEvents({ identityId: summary!.id })).map((e) => e.type);
        expect(types).toContain('identity.refresh_failed');
      } finally {
        await wide.close();
      }
    });

    describe('read deadline', () => {
      /** A second broker on the same store whose reads wait at most 200 ms, with a provider timeout well past that. */
      async function quickBroker() {
        return startTestBroker(server, {
          kind,
          dbPath: t.dbPath,
          ring: t.ring,
          refresh: { marginMs: 500, readDeadlineMs: 200 },
          providerTimeoutMs: 3_000,
        });
      }

      it('an expired token and a slow provider: provider_unavailable (timeout) within the deadline; the refresh goes on and serves the next read', async () => {
        const quick = await quickBroker();
        try {
          await authorizeUser(quick.broker, server, 'dora');
          await expire('dora');
          const { version } = (await quick.broker.store.getIdentity((await quick.broker.findIdentity('local', 'dora'))!.id))!;
          server.resetCounters();
          server.failNextTokenRequests(1, { delayMs: 1_000 });
          const started = Date.now();
          const err = await quick.broker.getIdentity('local', 'dora').catch((e) => e);
          expect(Date.now() - started).toBeLessThan(1_000); // answered before the provider did
          expect(err).toMatchObject({ code: 'provider_unavailable', providerId: 'local-idp', reason: 'timeout', retryable: true });
          // The refresh went on: once the provider answers, its tokens are stored for the next read.
          const id = (await quick.broker.findIdentity('local', 'dora'))!.id;
          for (let waited = 0; (await quick.broker.store.getIdentity(id))!.version === version; waited += 50) {
            expect(waited).toBeLessThan(5_000);
            await sleep(50);
          }
          const fresh = await quick.broker.getIdentity('local', 'dora');
          expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
          expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
        } finally {
          await quick.close();
        }
      });

      it('a token still valid and a slow provider: the current token within the deadline', async () => {
        const quick = await quickBroker();
        try {
          await authorizeUser(quick.broker, server, 'dean');
          const current = await quick.broker.getIdentity('local', 'dean');
          const id = current!.identityId;
          // Inside the refresh margin, not yet expired.
          await quick.broker.store.db
            .updateTable('identities')
            .set({ expires_at: Date.now() + 400, updated_at: Date.now() - 3_600_000 })
            .where('id', '=', id)
            .execute();
          server.resetCounters();
          server.failNextTokenRequests(1, { delayMs: 1_000 });
          const started = Date.now();
          const served = await quick.broker.getIdentity('local', 'dean');
          expect(Date.now() - started).toBeLessThan(1_000);
          expect(served!.accessToken).toBe(current!.accessToken);
          expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
        } finally {
          await quick.close();
        }
      });
    });

    it("a forced refresh that fails raises the provider's error, even while the current token is valid, and keeps that token", async () => {
      await authorizeUser(broker, server, 'yara');
      const current = await broker.getIdentity('local', 'yara');
      server.failNextTokenRequests(3, { status: 502 });
      const err = await broker.getIdentity('local', 'yara', { force: true }).catch((e) => e);
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(err).toMatchObject({ code: 'provider_unavailable', reason: '5xx', providerId: 'local-idp' });
      // Readers that do not force still get the valid token, and the identity stays active.
      expect((await broker.getIdentity('local', 'yara'))!.accessToken).toBe(current!.accessToken);
      expect((await broker.findIdentity('local', 'yara'))!.status).toBe('active');
    });
  });
});
