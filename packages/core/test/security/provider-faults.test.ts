import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuthorizationFailed, ProviderError, ProviderUnavailable, ReauthorizationRequired, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer, type TokenFault } from '../support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, STORES, redirectUriFor, startTestBroker, type TestBroker } from '../support/broker.js';
import { allIdentityRows, captureLogs, expectNoSecrets, failureOf, storedTokens, type CapturedLogs } from './support.js';

/**
 * Hostile token responses and faulty providers, against the real oidc-provider (its token
 * endpoint's fault injection) and, for userinfo, a local endpoint in front of it that fails on
 * demand. Every case ends in a defined state: the authorization stores nothing, a refresh leaves
 * the row as it was (or marks it needs_reauth on invalid_grant), and no token, code or secret
 * reaches the logs. Shapes of specific providers are in ../quirks.test.ts.
 */

const TIMEOUT_MS = 400;
/** Marks every token these tests inject, so a leak into logs or messages is easy to find. */
const INJECTED = 'injected-secret-token-7f3a9c';

let server: AuthServer;
/** An authorization server that never rotates refresh tokens. */
let steady: AuthServer;
let userinfo: FlakyUserinfo;

beforeAll(async () => {
  const client = {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: ['local', 'flaky', 'steady', 'plain'].map(redirectUriFor),
  };
  [server, steady] = await Promise.all([
    startAuthServer({ clients: [client], accessTokenTtl: 60 }),
    startAuthServer({ clients: [client], accessTokenTtl: 60, rotateRefreshTokens: false }),
  ]);
  userinfo = await startFlakyUserinfo(`${server.issuer}/me`);
});
afterAll(async () => {
  await Promise.all([server?.close(), steady?.close(), userinfo?.close()]);
});

type UserinfoMode = 'pass' | 'status500' | 'status401' | 'reset' | 'hang' | 'html';

interface FlakyUserinfo {
  url: string;
  mode: UserinfoMode;
  close(): Promise<void>;
}

/** A userinfo endpoint that forwards to the real one, or fails the way `mode` says. */
async function startFlakyUserinfo(upstream: string): Promise<FlakyUserinfo> {
  const state = { mode: 'pass' as UserinfoMode };
  const http: Server = createServer((req, res) => {
    switch (state.mode) {
      case 'status500':
        return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
      case 'status401':
        return void res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      case 'reset':
        return void req.socket.destroy();
      case 'hang':
        return; // never answers
      case 'html':
        return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
      case 'pass':
        void fetch(upstream, { headers: { authorization: req.headers.authorization ?? '' } }).then(async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(await r.text());
        });
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/me`,
    get mode() {
      return state.mode;
    },
    set mode(m: UserinfoMode) {
      state.mode = m;
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

describe.each(STORES)('on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  let logs: CapturedLogs;
  const secrets = new Set<string>([CLIENT_SECRET, INJECTED]);

  beforeAll(async () => {
    logs = captureLogs();
    t = await startTestBroker(server, {
      kind,
      logger: logs.logger,
      providerTimeoutMs: TIMEOUT_MS,
      refresh: { marginMs: 1000, attempts: 3, baseDelayMs: 20, maxDelayMs: 1500, coolDownMs: 200 },
    });
    broker = t.broker;
    // The same provider, with its userinfo endpoint behind the flaky one.
    const idp = await broker.getProvider('local-idp');
    await broker.putProvider({ ...idp, id: 'flaky-idp', userinfoUrl: userinfo.url });
    await broker.putService({ id: 'flaky', providerId: 'flaky-idp', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    // Plain OAuth 2.0 (no openid scope, so no ID token is required) with the profile in the token
    // response: a token response stands or falls on its own shape.
    await broker.putProvider({ ...idp, id: 'plain-idp', profile: { source: 'token_response', id: 'user_id' } });
    await broker.putService({
      id: 'plain',
      providerId: 'plain-idp',
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      scopes: ['tasks:read'],
    });
    await broker.discoverProvider('steady-idp', steady.issuer);
    await broker.putService({ id: 'steady', providerId: 'steady-idp', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  });
  beforeEach(() => {
    server.resetCounters();
    userinfo.mode = 'pass';
  });
  afterAll(async () => {
    // Every line the broker logged, at trace level, over every test in this file.
    expectNoSecrets(logs.text(), secrets);
    await t?.close();
  });

  /** Runs a flow up to the callback; the test then completes it. Records the code and state as secrets. */
  async function calledBack(userId: string, serviceId = 'local', at = server) {
    const started = await broker.beginAuthorization({ serviceId, userId, finishedUrl: '/done' });
    const callback = await at.authorize(started.url, { login: userId });
    secrets.add(started.state);
    secrets.add(callback.searchParams.get('code')!);
    return callback.searchParams;
  }

  async function authorized(userId: string, serviceId = 'local', at = server) {
    const done = await broker.completeAuthorization(serviceId, await calledBack(userId, serviceId, at));
    const tokens = await storedTokens(broker, done.identity.id);
    secrets.add(tokens.access);
    if (tokens.refresh) secrets.add(tokens.refresh);
    return { id: done.identity.id, tokens };
  }

  /** Completes a callback that must fail: AuthorizationFailed, nothing stored, the user sent to finishedUrl with the error. */
  async function failsWithNothingStored(query: URLSearchParams, serviceId = 'local'): Promise<AuthorizationFailed> {
    const before = await allIdentityRows(broker);
    const err = await failureOf(broker.completeAuthorization(serviceId, query));
    expect(err).toBeInstanceOf(AuthorizationFailed);
    const failed = err as AuthorizationFailed;
    expect(await allIdentityRows(broker)).toEqual(before);
    const landing = new URL(failed.context.finishedUrl!, 'http://app.invalid');
    expect(landing.pathname).toBe('/done');
    expect(landing.searchParams.get('error')).toBe(failed.error);
    expectNoSecrets(failed.message, secrets);
    return failed;
  }

  async function expire(identityId: string) {
    await broker.store.db
      .updateTable('identities')
      .set({ expires_at: Date.now() - 1000 })
      .where('id', '=', identityId)
      .execute();
  }

  /** The row as a refresh that failed must leave it: the same but for the (released) lease. */
  type IdentityRowLike = Awaited<ReturnType<typeof rowWithoutLease>>;

  async function rowWithoutLease(identityId: string) {
    const row = await broker.store.getIdentity(identityId);
    return { ...row!, lease_owner: null, lease_until: null };
  }

  /**
   * The row as before the failure, apart from the failure it now records for every caller (cause,
   * cool-down); returns that record.
   */
  async function expectUnchangedButFailed(identityId: string, before: IdentityRowLike, cause: string) {
    const after = (await broker.store.getIdentity(identityId))!;
    const { refresh_failed_at, refresh_failure, refresh_retry_at, refresh_failures, ...rest } = expectFailingSince(after);
    expect({ ...rest, refresh_failed_at: null, refresh_failure: null, refresh_retry_at: null, refresh_failures: 0 }).toEqual(before);
    expect({ refresh_failure, refresh_failures }).toEqual({ refresh_failure: cause, refresh_failures: 1 });
    expect(refresh_retry_at!).toBeGreaterThan(refresh_failed_at!);
    return { retryAt: refresh_retry_at!, failedAt: refresh_failed_at! };
  }

  /** The row with its dead-state clock checked as started by the failed refresh, and then cleared for comparison. */
  function expectFailingSince<T extends { failing_since: number | null }>(row: T): T {
    expect(row.failing_since).toBeGreaterThan(0);
    return { ...row, failing_since: null };
  }

  describe('hostile token responses to the code exchange', () => {
    const HOSTILE: [string, TokenFault, string][] = [
      [
        'a JSON body over 256 KiB',
        {
          status: 200,
          body: { access_token: INJECTED, token_type: 'Bearer', expires_in: 60, user_id: 'u', padding: 'p'.repeat(260 * 1024) },
        },
        'invalid_response',
      ],
      ['not JSON (form-encoded, text/plain)', { status: 200, body: `access_token=${INJECTED}&token_type=bearer` }, 'invalid_response'],
      [
        'a JSON content type over a broken body',
        { status: 200, body: `{"access_token":"${INJECTED}"`, headers: { 'content-type': 'application/json' } },
        'invalid_response',
      ],
      [
        'a 5 MB JSON body',
        {
          status: 200,
          body: { access_token: INJECTED, token_type: 'Bearer', expires_in: 60, user_id: 'u', padding: 'x'.repeat(5 * 1024 * 1024) },
        },
        'invalid_response',
      ],
      ['a 5 MB body that is not JSON', { status: 200, body: `${INJECTED}${'y'.repeat(5 * 1024 * 1024)}` }, 'invalid_response'],
      ['no access_token', { status: 200, body: { token_type: 'Bearer', expires_in: 60, refresh_token: INJECTED } }, 'invalid_response'],
      ['access_token as a number', { status: 200, body: { access_token: 42, token_type: 'Bearer' } }, 'invalid_response'],
      ['access_token as an object', { status: 200, body: { access_token: { value: INJECTED }, token_type: 'Bearer' } }, 'invalid_response'],
      ['an empty access_token', { status: 200, body: { access_token: '', token_type: 'Bearer' } }, 'invalid_response'],
      [
        'expires_in not a number',
        { status: 200, body: { access_token: INJECTED, token_type: 'Bearer', expires_in: 'soon' } },
        'invalid_response',
      ],
      ['expires_in negative', { status: 200, body: { access_token: INJECTED, token_type: 'Bearer', expires_in: -5 } }, 'invalid_response'],
      [
        'refresh_token as a number',
        { status: 200, body: { access_token: INJECTED, token_type: 'Bearer', refresh_token: 7 } },
        'invalid_response',
      ],
      [
        'id_token that is not a JWT',
        { status: 200, body: { access_token: INJECTED, token_type: 'Bearer', id_token: 'not-a-jwt' } },
        'invalid_response',
      ],
      ['a JSON array', { status: 200, body: [INJECTED] }, 'invalid_response'],
      ['JSON null', { status: 200, body: 'null', headers: { 'content-type': 'application/json' } }, 'invalid_response'],
      ['an empty body', { status: 200 }, 'invalid_response'],
    ];

    it("control: a well-formed injected response is stored, so each failure below is the response's shape", async () => {
      const query = await calledBack('control', 'plain');
      server.failNextTokenRequests(1, {
        status: 200,
        body: { access_token: `${INJECTED}-control`, token_type: 'Bearer', expires_in: 60, user_id: 'u-1' },
      });
      const done = await broker.completeAuthorization('plain', query);
      expect(done.identity.profile).toEqual({ id: 'u-1' });
      expect((await storedTokens(broker, done.identity.id)).access).toBe(`${INJECTED}-control`);
      await broker.deleteIdentity(done.identity.id);
    });

    it.each([
      ['token_type missing: read as bearer', { access_token: `${INJECTED}-t1`, expires_in: 3600, user_id: 'u' }],
      [
        'expires_in as a numeric string: parsed',
        { access_token: `${INJECTED}-t2`, token_type: 'Bearer', expires_in: '3600', user_id: 'u' },
      ],
    ])('tolerated: %s, with the right expiry', async (_name, body) => {
      const query = await calledBack('tolerated', 'plain');
      server.failNextTokenRequests(1, { status: 200, body });
      const done = await broker.completeAuthorization('plain', query);
      expect(Date.parse(done.identity.expiresAt!) - Date.now()).toBeGreaterThan(3500_000);
      expect(Date.parse(done.identity.expiresAt!) - Date.now()).toBeLessThanOrEqual(3600_000);
      await broker.deleteIdentity(done.identity.id);
    });

    it.each(HOSTILE)('%s: AuthorizationFailed, nothing stored, no secret in the message', async (_name, fault, error) => {
      const query = await calledBack('hostile-code', 'plain');
      server.failNextTokenRequests(1, fault);
      const err = await failsWithNothingStored(query, 'plain');
      expect(err.error).toBe(error);
      expect(err.message).toMatch(/code exchange/);
      expect(server.tokenRequests.total).toBe(1);
    });
  });

  describe('faulty providers during the code exchange', () => {
    it.each([
      ['a response slower than the timeout', { delayMs: TIMEOUT_MS * 3 } as TokenFault, 'temporarily_unavailable', /timed out/],
      ['a connection reset', { reset: true } as TokenFault, 'temporarily_unavailable', /network|ECONNRESET|socket|fetch failed/i],
      [
        '429 with Retry-After',
        { status: 429, body: { error: 'slow_down' }, headers: { 'retry-after': '1' } } as TokenFault,
        'temporarily_unavailable',
        /HTTP 429/,
      ],
      [
        '503 with an HTML page',
        { status: 503, body: '<html>down</html>', headers: { 'content-type': 'text/html' } } as TokenFault,
        'temporarily_unavailable',
        /HTTP 503/,
      ],
      [
        'invalid_grant (code already used or expired)',
        { status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } } as TokenFault,
        'invalid_grant',
        /invalid_grant/,
      ],
      ['invalid_client', { status: 401, body: { error: 'invalid_client' } } as TokenFault, 'invalid_client', /invalid_client/],
    ])('%s: a defined error, nothing stored, one token request (a code is never retried)', async (_name, fault, error, says) => {
      const query = await calledBack('faulty-code');
      server.failNextTokenRequests(1, fault);
      const started = Date.now();
      const err = await failsWithNothingStored(query);
      expect(err.error).toBe(error);
      expect(err.message).toMatch(says);
      expect(server.tokenRequests.total).toBe(1);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1500);
    });
  });

  describe('userinfo fails after a good token response', () => {
    it.each([
      ['500', 'status500', 'temporarily_unavailable'],
      ['401', 'status401', 'temporarily_unavailable'],
      ['a connection reset', 'reset', 'temporarily_unavailable'],
      ['no answer within the timeout', 'hang', 'temporarily_unavailable'],
      ['HTML with HTTP 200', 'html', 'invalid_response'],
    ] as [string, UserinfoMode, string][])(
      '%s: the new grant is not stored, and an existing identity keeps its tokens',
      async (_name, mode, error) => {
        const existing = await authorized('profile-fails', 'flaky');
        const before = await broker.store.getIdentity(existing.id);
        const query = await calledBack('profile-fails', 'flaky');
        userinfo.mode = mode;
        const err = await failsWithNothingStored(query, 'flaky');
        expect(err.error).toBe(error);
        expect(err.message).toMatch(/profile/);
        expect(server.tokenRequests.byGrant.authorization_code).toBe(2);
        // Nothing lost: the identity from before still serves its own, still valid, token.
        expect(await broker.store.getIdentity(existing.id)).toEqual(before);
        userinfo.mode = 'pass';
        const fresh = await broker.getIdentity('flaky', 'profile-fails');
        expect(fresh!.accessToken).toBe(existing.tokens.access);
        expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
      },
    );
  });

  describe('hostile token responses to a refresh', () => {
    it.each([
      ['not JSON', { status: 200, body: `access_token=${INJECTED}` } as TokenFault],
      ['no access_token', { status: 200, body: { token_type: 'Bearer', refresh_token: INJECTED } } as TokenFault],
      [
        'wrong types',
        { status: 200, body: { access_token: INJECTED, token_type: 'Bearer', expires_in: 'soon', refresh_token: ['x'] } } as TokenFault,
      ],
      [
        'a 5 MB body',
        {
          status: 200,
          body: { access_token: INJECTED, token_type: 'Bearer', expires_in: 60, padding: 'z'.repeat(5 * 1024 * 1024) },
        } as TokenFault,
      ],
      ['a JSON array', { status: 200, body: [] } as TokenFault],
    ])('%s: ProviderError, one request, the row unchanged and still active, the old refresh token still good', async (_name, fault) => {
      const { id, tokens } = await authorized('hostile-refresh');
      await expire(id);
      const before = await rowWithoutLease(id);
      server.resetCounters();
      server.failNextTokenRequests(1, fault);
      const err = await failureOf(broker.getIdentity('local', id));
      expect(err).toBeInstanceOf(ProviderError);
      expectNoSecrets((err as Error).message, secrets);
      expect(server.tokenRequests.total).toBe(1);
      expect(expectFailingSince((await broker.store.getIdentity(id))!)).toEqual(before);
      expect(await server.isRefreshTokenActive(tokens.refresh!)).toBe(true);
    });
  });

  describe('faulty providers during a refresh', () => {
    it('connection resets are retried; after the last attempt, ProviderUnavailable and the row unchanged', async () => {
      const { id } = await authorized('resets');
      await expire(id);
      const before = await rowWithoutLease(id);
      server.resetCounters();
      server.failNextTokenRequests(3, { reset: true });
      const err = await failureOf(broker.getIdentity('local', id));
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect((err as ProviderUnavailable).retryable).toBe(true);
      expect(server.tokenRequests.total).toBe(3);
      expect(err).toMatchObject({ reason: 'network' });
      const { retryAt } = await expectUnchangedButFailed(id, before, 'network');
      // The provider recovers: after the cool-down the same refresh token works.
      // A timer may fire up to a millisecond before Date.now() reaches its time: wait a little past it.
      await new Promise((r) => setTimeout(r, Math.max(0, retryAt - Date.now()) + 5));
      const fresh = await broker.getIdentity('local', id);
      expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
    });

    it('a reset then success: one call, two requests, the new tokens stored', async () => {
      const { id, tokens } = await authorized('reset-once');
      await expire(id);
      server.resetCounters();
      server.failNextTokenRequests(1, { reset: true });
      const fresh = await broker.getIdentity('local', id);
      expect(fresh!.accessToken).not.toBe(tokens.access);
      expect(server.tokenRequests.total).toBe(2);
      secrets.add(fresh!.accessToken);
      secrets.add((await storedTokens(broker, id)).refresh!);
    });

    it('429 with Retry-After: waits that long before trying again, then succeeds', async () => {
      const { id } = await authorized('rate-limited');
      await expire(id);
      server.resetCounters();
      server.failNextTokenRequests(1, { status: 429, body: { error: 'rate_limited' }, headers: { 'retry-after': '1' } });
      const started = Date.now();
      const fresh = await broker.getIdentity('local', id);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(server.tokenRequests.total).toBe(2);
      expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
      secrets.add(fresh!.accessToken);
    });

    it('429 every time: ProviderUnavailable after the bounded attempts, never longer than the capped waits, row unchanged', async () => {
      const { id } = await authorized('rate-limited-long');
      await expire(id);
      const before = await rowWithoutLease(id);
      server.resetCounters();
      server.failNextTokenRequests(3, { status: 429, headers: { 'retry-after': '3600' } });
      const started = Date.now();
      const err = await failureOf(broker.getIdentity('local', id));
      expect(err).toBeInstanceOf(ProviderUnavailable);
      expect(server.tokenRequests.total).toBe(3);
      // Retry-After: 3600 is capped at maxDelayMs (1.5 s) per wait.
      expect(Date.now() - started).toBeLessThan(2 * 1500 + 1000);
      expect(err).toMatchObject({ reason: 'rate_limited' });
      // The provider asked for an hour; the cool-down honours that up to its cap (60 s by default).
      const { retryAt, failedAt } = await expectUnchangedButFailed(id, before, 'rate_limited');
      expect(retryAt - failedAt).toBe(60_000);
    });

    it('a 5xx burst under 20 concurrent callers: one refresh in flight, retried through the burst, everyone gets the same token', async () => {
      const { id } = await authorized('burst');
      await expire(id);
      server.resetCounters();
      server.failNextTokenRequests(1, { status: 502, body: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } });
      server.failNextTokenRequests(1, { status: 503, body: { error: 'temporarily_unavailable' } });
      const results = await Promise.all(Array.from({ length: 20 }, () => broker.getIdentity('local', id)));
      expect(new Set(results.map((r) => r!.accessToken)).size).toBe(1);
      expect(server.tokenRequests.total).toBe(3);
      secrets.add(results[0]!.accessToken);
      secrets.add((await storedTokens(broker, id)).refresh!);
    });

    it('a 5xx burst while the token is still valid: the current token is served, the row unchanged, a refresh_failed event', async () => {
      const { id, tokens } = await authorized('burst-valid');
      // Inside the refresh margin, not yet expired.
      await broker.store.db
        .updateTable('identities')
        .set({ expires_at: Date.now() + 800, updated_at: Date.now() - 3_600_000 })
        .where('id', '=', id)
        .execute();
      const before = await rowWithoutLease(id);
      server.resetCounters();
      server.failNextTokenRequests(3, { status: 500 });
      const during = await broker.getIdentity('local', id);
      expect(during!.accessToken).toBe(tokens.access);
      await expectUnchangedButFailed(id, before, '5xx');
      expect((await broker.listEvents({ identityId: id })).map((e) => e.type)).toContain('identity.refresh_failed');
    });

    it('invalid_grant: needs_reauth, ReauthorizationRequired, old tokens kept, no further token request', async () => {
      const { id } = await authorized('grant-gone');
      await expire(id);
      const before = await broker.store.getIdentity(id);
      server.resetCounters();
      server.failNextTokenRequests(1, { status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
      const err = await failureOf(broker.getIdentity('local', id));
      expect(err).toBeInstanceOf(ReauthorizationRequired);
      const after = await broker.store.getIdentity(id);
      expect(after!.status).toBe('needs_reauth');
      expect(after!.tokens).toBe(before!.tokens);
      await expect(broker.getIdentity('local', id)).rejects.toBeInstanceOf(ReauthorizationRequired);
      expect(server.tokenRequests.total).toBe(1);
    });

    it('a refresh response without a refresh token keeps the stored one, which still works', async () => {
      const { id, tokens } = await authorized('no-new-refresh');
      await expire(id);
      server.resetCounters();
      const injectedAccess = `${INJECTED}-access`;
      server.failNextTokenRequests(1, { status: 200, body: { access_token: injectedAccess, token_type: 'Bearer', expires_in: 60 } });
      const fresh = await broker.getIdentity('local', id);
      expect(fresh!.accessToken).toBe(injectedAccess);
      const stored = await storedTokens(broker, id);
      expect(stored.refresh).toBe(tokens.refresh);
      // The kept refresh token is the live one at the provider: the next refresh succeeds.
      const next = await broker.getIdentity('local', id, { force: true });
      expect((await server.userinfo(next!.accessToken)).status).toBe(200);
      secrets.add(next!.accessToken);
      secrets.add((await storedTokens(broker, id)).refresh!);
    });

    it('a provider that never rotates: refreshes keep the one refresh token, and it keeps working', async () => {
      const { id, tokens } = await authorized('steady-user', 'steady', steady);
      for (let i = 0; i < 3; i++) {
        const fresh = await broker.getIdentity('steady', id, { force: true });
        expect(fresh!.accessToken).not.toBe(tokens.access);
        expect((await steady.userinfo(fresh!.accessToken)).status).toBe(200);
        secrets.add(fresh!.accessToken);
        expect((await storedTokens(broker, id)).refresh).toBe(tokens.refresh);
      }
      expect(await steady.isRefreshTokenActive(tokens.refresh!)).toBe(true);
    });
  });
});
