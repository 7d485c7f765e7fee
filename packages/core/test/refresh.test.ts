import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderUnavailable, ReauthorizationRequired, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, STORES, authorizeUser, redirectUriFor, startTestBroker, type TestBroker } from './support/broker.js';

let server: AuthServer;
const ACCESS_TOKEN_TTL = 2;

beforeAll(async () => {
  server = await startAuthServer({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUriFor('local')] }],
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
      refresh: { marginMs: 500, attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
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

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

    it('provider 500s are retried, then a retryable error; nothing is overwritten', async () => {
      await authorizeUser(broker, server, 'uma');
      await expire('uma');
      const summary = await broker.findIdentity('local', 'uma');
      const before = await broker.store.getIdentity(summary!.id);
      server.resetCounters();
      server.failNextTokenRequests(3, { status: 500, body: { error: 'server_error' } });
      const err = await broker.getIdentity('local', 'uma').catch((e) => e);
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(err.retryable).toBe(true);
      expect(server.tokenRequests.total).toBe(3);
      const after = await broker.store.getIdentity(summary!.id);
      expect({ ...after, lease_owner: null, lease_until: null, failing_since: null }).toEqual(before);
      expect(after!.lease_owner).toBeNull();
      expect(after!.status).toBe('active');
      // The failure starts the dead-state clock; the next success stops it.
      expect(after!.failing_since).toBeGreaterThan(0);
      // The provider is back: the next call refreshes with the same refresh token.
      const fresh = await broker.getIdentity('local', 'uma');
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

    it('timeouts are retried, then a retryable error', async () => {
      await authorizeUser(broker, server, 'wes');
      await expire('wes');
      server.resetCounters();
      server.failNextTokenRequests(3, { delayMs: 1500 });
      const err = await broker.getIdentity('local', 'wes').catch((e) => e);
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(err.message).toMatch(/timed out/);
      expect(server.tokenRequests.total).toBe(3);
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
  });
});
