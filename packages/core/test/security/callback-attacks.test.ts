import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationFailed, loadBuiltInCatalog, resolveProviderUrls, type LocalBroker } from '@everyauth/core';
import { buildAuthorizationUrl, clientContext } from '../../src/oauth/engine.js';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, STORES, beginAndConsent, redirectUriFor, startTestBroker, type TestBroker } from '../support/broker.js';
import { s256 } from '../support/shape-provider.js';
import { allIdentityRows, captureLogs, expectNoSecrets, failureOf, type CapturedLogs } from './support.js';

/**
 * RFC 9700 §4 client-side attacks on the authorization callback, each run against the real
 * LocalBroker and a real oidc-provider, on SQLite and PostgreSQL. Each attack must end in
 * AuthorizationFailed with nothing stored, and no secret may reach the logs.
 */

let server: AuthServer;
/** A second, independent authorization server: the "attacker's AS" of the mix-up attack (RFC 9700 §4.4). */
let otherServer: AuthServer;

beforeAll(async () => {
  const client = {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [redirectUriFor('local'), redirectUriFor('other'), redirectUriFor('mixb')],
  };
  [server, otherServer] = await Promise.all([
    startAuthServer({ clients: [client], accessTokenTtl: 60 }),
    startAuthServer({ clients: [client], accessTokenTtl: 60 }),
  ]);
});
afterAll(async () => {
  await server?.close();
  await otherServer?.close();
});

describe.each(STORES)('on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  let logs: CapturedLogs;
  /** Every secret the tests saw: none may appear in a log line. */
  const secrets = new Set<string>([CLIENT_SECRET]);

  beforeAll(async () => {
    logs = captureLogs();
    t = await startTestBroker(server, { kind, extraServices: ['other'], logger: logs.logger });
    broker = t.broker;
    await broker.discoverProvider('idp-b', otherServer.issuer);
    await broker.putService({ id: 'mixb', providerId: 'idp-b', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  });
  afterAll(async () => {
    expectNoSecrets(logs.text(), secrets);
    await t?.close();
  });

  /** Starts a flow and logs in at the provider; returns the state, the callback (unfetched) and its code. */
  async function startedAndCalledBack(
    userId: string,
    options: { serviceId?: string; browserBinding?: string; finishedUrl?: string; at?: AuthServer } = {},
  ) {
    const { at, ...flow } = options;
    const { started, callback } = await beginAndConsent(broker, at ?? server, userId, flow);
    const code = callback.searchParams.get('code')!;
    for (const s of [started.state, code, options.browserBinding]) if (s) secrets.add(s);
    return { started, callback, code };
  }

  /** Completes a callback that must fail; asserts nothing was stored or changed. */
  async function rejected(
    serviceId: string,
    query: URLSearchParams | Record<string, string>,
    options: { browserBinding?: string } = {},
  ): Promise<AuthorizationFailed> {
    const before = await allIdentityRows(broker);
    const err = await failureOf(broker.completeAuthorization(serviceId, query, options));
    expect(err).toBeInstanceOf(AuthorizationFailed);
    expect(await allIdentityRows(broker)).toEqual(before);
    return err as AuthorizationFailed;
  }

  describe('CSRF on the callback (RFC 9700 §4.7, RFC 6749 §10.12)', () => {
    it('a callback without state is refused', async () => {
      const { code } = await startedAndCalledBack('csrf-nostate');
      const err = await rejected('local', { code, iss: server.issuer });
      expect(err.message).toMatch(/no "state"/);
    });

    it('a callback with a foreign state (never issued by this broker) is refused', async () => {
      const { code } = await startedAndCalledBack('csrf-foreign');
      const err = await rejected('local', { code, state: 'x'.repeat(43), iss: server.issuer });
      expect(err.message).toMatch(/unknown/);
    });

    it('a state started in another browser (binding cookie missing or different) is refused', async () => {
      const a = await startedAndCalledBack('csrf-victim', { browserBinding: 'binding-of-browser-A-0123456789' });
      const wrongBrowser = await rejected('local', a.callback.searchParams, { browserBinding: 'binding-of-browser-B-0123456789' });
      expect(wrongBrowser.message).toMatch(/different browser.*RFC 9700 §4\.7/);

      const b = await startedAndCalledBack('csrf-victim', { browserBinding: 'binding-of-browser-A-abcdefghij' });
      const noCookie = await rejected('local', b.callback.searchParams);
      expect(noCookie.message).toMatch(/different browser/);
    });

    it("the attacker's own completed flow pushed into the victim's browser stores nothing for anyone", async () => {
      // The attacker starts a flow in their browser, stops at the callback, and makes the victim's browser open it.
      const attacker = await startedAndCalledBack('mallory', { browserBinding: 'mallory-browser-binding-000000' });
      await rejected('local', attacker.callback.searchParams, { browserBinding: 'victim-browser-binding-11111111' });
      expect(await broker.findIdentity('local', 'mallory')).toBeUndefined();
    });

    it('the same browser completes the flow', async () => {
      const ok = await startedAndCalledBack('csrf-ok', { browserBinding: 'binding-of-browser-C-0123456789' });
      const done = await broker.completeAuthorization('local', ok.callback.searchParams, {
        browserBinding: 'binding-of-browser-C-0123456789',
      });
      expect(done.identity.userId).toBe('csrf-ok');
    });
  });

  describe('state replay (single use)', () => {
    it('a state that completed once cannot complete again, and the identity is not touched', async () => {
      const { callback } = await startedAndCalledBack('replay');
      await broker.completeAuthorization('local', callback.searchParams);
      const err = await rejected('local', callback.searchParams);
      expect(err.message).toMatch(/already used/);
    });

    it('a state whose callback failed is used up too: a second try with a good code is refused', async () => {
      const { started, code } = await startedAndCalledBack('replay-after-failure');
      await rejected('local', { state: started.state, code: 'not-the-code', iss: server.issuer });
      const err = await rejected('local', { state: started.state, code, iss: server.issuer });
      expect(err.message).toMatch(/already used/);
    });

    it('two callbacks racing with one state: exactly one completes', async () => {
      const { callback } = await startedAndCalledBack('replay-race');
      const results = await Promise.allSettled(
        [1, 2, 3, 4].map(() => broker.completeAuthorization('local', new URLSearchParams(callback.searchParams))),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AuthorizationFailed);
    });

    it('a callback repeating state or code is refused (RFC 6749 §3.1)', async () => {
      const { callback } = await startedAndCalledBack('dup-params');
      const doubled = new URLSearchParams(callback.searchParams);
      doubled.append('code', 'a-second-code');
      const err = await rejected('local', doubled);
      expect(err.message).toMatch(/repeats/);
    });
  });

  describe('authorization code injection (RFC 9700 §4.5): PKCE binds the code to its flow', () => {
    it("a victim's code injected into the attacker's flow fails at the provider: the verifier does not match", async () => {
      const victim = await startedAndCalledBack('victim');
      const attacker = await startedAndCalledBack('attacker');
      const before = server.tokenRequests.byGrant.authorization_code ?? 0;
      const err = await rejected('local', { state: attacker.started.state, code: victim.code, iss: server.issuer });
      expect(err.error).toBe('invalid_grant');
      // The exchange reached the provider, which refused it: the defence is PKCE at the AS, not a local check.
      expect(server.tokenRequests.byGrant.authorization_code).toBe(before + 1);
      expect(await broker.findIdentity('local', 'attacker')).toBeUndefined();
      expect(await broker.findIdentity('local', 'victim')).toBeUndefined();
    });

    it('oidc-provider refuses a code presented with the wrong verifier, and accepts no exchange without one', async () => {
      const { code } = await startedAndCalledBack('wrong-verifier');
      const exchange = (verifier?: string) =>
        fetch(server.tokenEndpoint, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: redirectUriFor('local'),
            ...(verifier ? { code_verifier: verifier } : {}),
          }),
        });
      for (const verifier of ['a'.repeat(43), undefined]) {
        const response = await exchange(verifier);
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ error: expect.stringMatching(/invalid_grant|invalid_request/) });
      }
    });
  });

  describe('mix-up (RFC 9700 §4.4, RFC 9207)', () => {
    it("an iss that is not the service's provider is refused", async () => {
      const { callback } = await startedAndCalledBack('mixup-iss');
      callback.searchParams.set('iss', otherServer.issuer);
      const err = await rejected('local', callback.searchParams);
      expect(err.message).toMatch(/RFC 9207/);
    });

    it('a missing iss from a provider that advertises it is refused', async () => {
      const { callback } = await startedAndCalledBack('mixup-noiss');
      callback.searchParams.delete('iss');
      const err = await rejected('local', callback.searchParams);
      expect(err.message).toMatch(/iss/);
    });

    it("a response from the other provider, delivered to this service's callback, is refused", async () => {
      const atB = await startedAndCalledBack('mixup-b', { serviceId: 'mixb', at: otherServer });
      const err = await rejected('local', atB.callback.searchParams);
      expect(err.message).toMatch(/another service/);
    });

    it("this provider's code with this state but the other provider's iss is refused before any token request", async () => {
      const { started, code } = await startedAndCalledBack('mixup-cross');
      const before = server.tokenRequests.total + otherServer.tokenRequests.total;
      const err = await rejected('local', { state: started.state, code, iss: otherServer.issuer });
      expect(err.message).toMatch(/RFC 9207/);
      expect(server.tokenRequests.total + otherServer.tokenRequests.total).toBe(before);
    });

    it('a code meant for another service of the same provider is refused (the state names the service)', async () => {
      const { callback } = await startedAndCalledBack('mixup-svc', { serviceId: 'other' });
      const err = await rejected('local', callback.searchParams);
      expect(err.message).toMatch(/another service.*RFC 9700 §4\.4/);
    });
  });

  describe('PKCE downgrade (RFC 9700 §2.1.1, RFC 7636)', () => {
    it('every authorization URL carries a fresh S256 challenge, never plain, never the verifier', async () => {
      const challenges = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const url = new URL((await broker.beginAuthorization({ serviceId: 'local', userId: `pkce-${i}` })).url);
        expect(url.searchParams.get('code_challenge_method')).toBe('S256');
        expect(url.searchParams.getAll('code_challenge_method')).toHaveLength(1);
        // RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
        expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
        challenges.add(url.searchParams.get('code_challenge')!);
        expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }
      expect(challenges.size).toBe(20);
    });

    it("a service's extra parameters cannot replace the protocol ones (plain challenge, state, redirect_uri, response_type)", async () => {
      await broker.putService({
        id: 'downgrade',
        providerId: 'local-idp',
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        params: {
          code_challenge_method: 'plain',
          code_challenge: 'known',
          state: 'fixed',
          redirect_uri: 'https://evil.example/cb',
          response_type: 'token',
          client_id: 'other',
          prompt: 'login',
        },
      });
      const started = await broker.beginAuthorization({ serviceId: 'downgrade', userId: 'downgrade' });
      const url = new URL(started.url);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('code_challenge')).not.toBe('known');
      expect(url.searchParams.get('state')).toBe(started.state);
      expect(url.searchParams.get('redirect_uri')).toBe(redirectUriFor('downgrade'));
      expect(url.searchParams.get('response_type')).toBe('code');
      expect(url.searchParams.get('client_id')).toBe(CLIENT_ID);
      // Extra parameters that are not the protocol's still apply.
      expect(url.searchParams.get('prompt')).toBe('login');
    });
  });
});

describe('PKCE across the built-in catalog', () => {
  it('every provider that supports PKCE gets S256 = BASE64URL(SHA256(verifier)); none sets a challenge method of its own', async () => {
    const catalog = [...loadBuiltInCatalog().values()].filter((p) => p.kind === 'oauth2'); // the kinds with a code flow
    expect(catalog.length).toBeGreaterThan(20);
    for (const entry of catalog) {
      // Variables with a default (a self-hosted origin) keep it; the others get a host-safe value.
      const variables = Object.fromEntries(
        Object.entries(entry.variables)
          .filter(([, v]) => v.default === undefined)
          .map(([name]) => [name, 'acme']),
      );
      const ctx = clientContext(resolveProviderUrls(entry, variables), 'client', 'secret', 1000);
      const verifier = 'v'.repeat(43);
      const url = await buildAuthorizationUrl(ctx, {
        redirectUri: 'https://app.example/cb',
        state: 's',
        scopes: ['a'],
        params: {},
        codeVerifier: verifier,
      });
      expect(Object.keys(entry.authorizationParams), entry.id).not.toContain('code_challenge_method');
      if (entry.pkce) {
        expect(url.searchParams.get('code_challenge_method'), entry.id).toBe('S256');
        expect(url.searchParams.get('code_challenge'), entry.id).toBe(s256(verifier));
      } else {
        expect(url.searchParams.has('code_challenge'), entry.id).toBe(false);
      }
      expect(url.href, entry.id).not.toContain(verifier);
    }
  });
});
