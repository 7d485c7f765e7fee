import express5, { type ErrorRequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmbiguousIdentity, InvalidInput, ReauthorizationRequired, createEveryAuth, type EveryAuth } from '@everyauth/express';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, startTestBroker, type StoreKind, type TestBroker } from '../../core/test/support/broker.js';
import { startTestServer, type TestServer } from '../../server/test/support/server.js';
import { CookieJar, listen, location } from './support/app.js';

// @ts-expect-error: Express 4 is installed under an alias without its own types; its API is the one used here.
import express4Module from 'express4';
const express4 = express4Module as typeof express5;

/**
 * The brokers the middleware runs against: embedded (the app serves the callback and binds the
 * browser) and remote (the EveryAuth server hosts the flow and its callback).
 */
const KINDS: { name: string; express: typeof express5; store: StoreKind; broker: 'local' | 'remote' }[] = [
  { name: 'Express 5, LocalBroker on SQLite', express: express5, store: 'sqlite', broker: 'local' },
  { name: 'Express 5, LocalBroker on PostgreSQL', express: express5, store: 'postgres', broker: 'local' },
  { name: 'Express 4, LocalBroker on SQLite', express: express4, store: 'sqlite', broker: 'local' },
  { name: 'Express 5, RemoteBroker to the EveryAuth server', express: express5, store: 'sqlite', broker: 'remote' },
];

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({ clients: [], accessTokenTtl: 60 });
});
afterAll(() => server?.close());

describe.each(KINDS)('$name', ({ express, store, broker: kind }) => {
  let everyauth: EveryAuth;
  let t: TestBroker | undefined;
  let remote: TestServer | undefined;
  let app: ReturnType<typeof express5>;
  let http: Awaited<ReturnType<typeof listen>>;
  const errors: unknown[] = [];

  beforeAll(async () => {
    everyauth = createEveryAuth();
    app = express();
    // The tutorial's code, unchanged but for the service id.
    app.use(
      '/local/authorize/:userId',
      everyauth.authorize('local', {
        finishedUrl: '/done',
        mapToUserId: (req) => req.params.userId,
      }),
    );
    app.use(
      '/tenant/:tenantId/authorize/:userId',
      everyauth.authorize('other', {
        finishedUrl: '/done?from=tenant',
        mapToUserId: (req) => req.params.userId,
        mapToTenantId: (req) => req.params.tenantId,
        tags: async (req) => ({ plan: String(req.query.plan ?? 'free') }),
      }),
    );
    app.use(
      '/evil/authorize/:userId',
      everyauth.authorize('local', { finishedUrl: 'https://evil.example/steal', mapToUserId: (req) => req.params.userId }),
    );
    app.use(
      '/broken/authorize/:userId',
      everyauth.authorize('local', {
        finishedUrl: '/broken-done',
        mapToUserId: () => {
          throw new Error('the session store is down');
        },
      }),
    );
    app.use(
      '/unknown/authorize/:userId',
      everyauth.authorize('missing', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId }),
    );
    app.get('/done', (req, res) => void res.json(req.query));
    app.get('/broken-done', (req, res) => void res.json(req.query));
    app.use(((err, _req, res, _next) => {
      errors.push(err);
      res.status(err.status ?? 500).json({ handled: err.code ?? 'error' });
    }) as ErrorRequestHandler);
    http = await listen(app);
    if (kind === 'local') {
      t = await startTestBroker(server, { kind: store, baseUrl: http.origin, extraServices: ['other'] });
      await server.addClient({
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${http.origin}/local/callback`, `${http.origin}/other/callback`],
      });
      everyauth.config({ broker: t.broker });
    } else {
      remote = await startTestServer(server, {
        kind: store,
        services: ['local', 'other'],
        broker: { allowedRedirectOrigins: [http.origin] },
      });
      everyauth.config({ broker: remote.remote(), baseUrl: http.origin });
    }
  });
  afterAll(async () => {
    await http?.close();
    await t?.close();
    await remote?.close();
  });

  /** Follows redirects (keeping cookies) until the browser is at the provider: one hop embedded, two through the server. */
  async function toProvider(browser: CookieJar, path: string) {
    let response = await browser.get(`${http.origin}${path}`);
    const start = response;
    for (let hops = 0; hops < 3; hops++) {
      expect(response.status).toBe(302);
      const next = location(response, http.origin);
      if (next.origin === server.issuer) return { start, atProvider: next };
      response = await browser.get(next);
    }
    throw new Error('never reached the provider');
  }

  /** A browser goes through the whole flow; returns where it landed. */
  async function signIn(path: string, login: string, browser = new CookieJar(), options: { deny?: boolean } = {}) {
    const { start, atProvider } = await toProvider(browser, path);
    const callback = await server.authorize(atProvider, { login, ...options });
    const landed = await browser.get(callback);
    expect([302, 303]).toContain(landed.status); // the server answers its callback with 303
    return { browser, start, callback, finished: location(landed, http.origin) };
  }

  it('runs the tutorial flow: provider, callback, finishedUrl with the ids, and a fresh token', async () => {
    const { start, finished } = await signIn('/local/authorize/alice', 'alice');
    expect(location(start, http.origin).origin).toBe(kind === 'local' ? server.issuer : remote!.url);
    expect(finished.origin).toBe(http.origin);
    expect(finished.pathname).toBe('/done');
    expect(Object.fromEntries(finished.searchParams)).toEqual({ userId: 'alice', serviceId: 'local' });

    const identity = await everyauth.getIdentity('local', 'alice');
    expect(identity).toMatchObject({ userId: 'alice', serviceId: 'local', profile: { id: 'alice' } });
    expect(identity!.identityId).toMatch(/^idn_/);
    expect(identity!.native).toHaveProperty('access_token', identity!.accessToken);
    expect(identity!.native).not.toHaveProperty('refresh_token');
    expect((await server.userinfo(identity!.accessToken)).status).toBe(200);
    expect(await everyauth.getIdentity('local', identity!.identityId)).toMatchObject({ userId: 'alice' });
    expect(await everyauth.getIdentity('local', 'nobody')).toBeUndefined();
  });

  it('calls the API through everyauth.fetch, the app never holding the token', async () => {
    await signIn('/local/authorize/fiona', 'fiona');
    // The provider's userinfo endpoint stands for its API, reached by host name (the proxy refuses IP literals).
    await (t?.broker ?? remote!.broker).putService({ id: 'local', apiBaseUrls: [server.issuer.replace('127.0.0.1', 'localhost')] });
    const response = await everyauth.fetch('local', 'fiona', '/me');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ sub: 'fiona' });
  });

  // Embedded only: through a server, the server sets the cookie and serves the callback (its own tests cover that).
  if (kind === 'local')
    it('sets the browser binding as an HttpOnly, SameSite=Lax cookie scoped to the callback path', async () => {
      const start = await new CookieJar().get(`${http.origin}/local/authorize/carol`);
      const cookie = start.headers.getSetCookie().find((c) => c.startsWith('everyauth_flow_local='));
      expect(cookie).toBeDefined();
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Lax/i);
      expect(cookie).toMatch(/Path=\/local\/callback/);
      expect(cookie).not.toMatch(/Secure/i);
    });

  it('refuses a callback completed in another browser (a forwarded link) and stores nothing', async () => {
    const { atProvider } = await toProvider(new CookieJar(), '/local/authorize/mallory-victim');
    const callback = await server.authorize(atProvider, { login: 'mallory' });
    const landed = await new CookieJar().get(callback);
    const finished = location(landed, http.origin);
    expect(finished.pathname).toBe('/done');
    expect(finished.searchParams.get('error')).toBe('invalid_request');
    expect(finished.searchParams.get('error_description')).toMatch(/different browser/);
    expect(await everyauth.getIdentity('local', 'mallory-victim')).toBeUndefined();
  });

  it('sends a refused consent to finishedUrl as error and error_description', async () => {
    const { finished } = await signIn('/local/authorize/dave', 'dave', new CookieJar(), { deny: true });
    expect(finished.pathname).toBe('/done');
    expect(finished.searchParams.get('error')).toBe('access_denied');
    expect(finished.searchParams.get('error_description')).toBeTruthy();
    expect(await everyauth.getIdentity('local', 'dave')).toBeUndefined();
  });

  // Embedded only: through a server, the callback is the server's.
  if (kind === 'local')
    it('sends a callback with an unknown state to the service finishedUrl, or to next(err) when the service has several', async () => {
      const response = await new CookieJar().get(`${http.origin}/other/callback?code=x&state=forged`);
      const finished = location(response, http.origin);
      expect(finished.pathname).toBe('/done');
      expect(finished.searchParams.get('from')).toBe('tenant');
      expect(finished.searchParams.get('error')).toBe('invalid_request');
      expect(finished.searchParams.get('error_description')).toMatch(/unknown/);

      const ambiguous = await new CookieJar().get(`${http.origin}/local/callback?code=x&state=forged`);
      expect(ambiguous.status).toBe(400);
      expect(await ambiguous.json()).toEqual({ handled: 'invalid_request' });
    });

  it('refuses a finishedUrl on another origin: next(err), no redirect there', async () => {
    const response = await new CookieJar().get(`${http.origin}/evil/authorize/erin`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ handled: 'invalid_input' });
    const err = errors.at(-1);
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe('finishedUrl');
  });

  it('sends errors while starting to finishedUrl: a throwing mapToUserId, an unknown service', async () => {
    const broken = location(await new CookieJar().get(`${http.origin}/broken/authorize/x`), http.origin);
    expect(broken.pathname).toBe('/broken-done');
    expect(broken.searchParams.get('error')).toBe('server_error');
    expect(broken.searchParams.get('error_description')).not.toMatch(/session store/); // the app's internals stay in its log

    const unknown = location(await new CookieJar().get(`${http.origin}/unknown/authorize/x`), http.origin);
    expect(unknown.searchParams.get('error')).toBe('service_not_found');
    expect(unknown.searchParams.get('serviceId')).toBe('missing');
  });

  it('stores tenant and tags, and finds identities by filter; ambiguity is an error', async () => {
    const first = await signIn('/tenant/acme/authorize/frank?plan=pro', 'frank');
    expect(Object.fromEntries(first.finished.searchParams)).toEqual({
      from: 'tenant',
      userId: 'frank',
      tenantId: 'acme',
      serviceId: 'other',
    });
    await signIn('/tenant/globex/authorize/frank', 'frank');

    await expect(everyauth.getIdentity('other', 'frank')).rejects.toBeInstanceOf(AmbiguousIdentity);
    expect(await everyauth.getIdentity('other', { userId: 'frank', tenantId: 'acme' })).toMatchObject({
      tenantId: 'acme',
      tags: { plan: 'pro' },
    });
    expect(await everyauth.getIdentity('other', { tags: { plan: 'free' } })).toMatchObject({ tenantId: 'globex' });

    const page1 = await everyauth.getIdentities('other', { userId: 'frank' }, { count: 1 });
    expect(page1.items).toHaveLength(1);
    expect(page1.items[0]).not.toHaveProperty('accessToken');
    const page2 = await everyauth.getIdentities('other', { userId: 'frank' }, { next: page1.next, count: 1 });
    expect(page2.items).toHaveLength(1);
    expect(page2.next).toBeUndefined();
    expect(page2.items[0]!.id).not.toBe(page1.items[0]!.id);

    await expect(everyauth.deleteIdentities('other', {})).rejects.toBeInstanceOf(InvalidInput);
    expect(await everyauth.deleteIdentities('other', { tenantId: 'acme' })).toBe(1);
    const remaining = await everyauth.getIdentities('other', {});
    expect(remaining.items.map((i) => i.tenantId)).toEqual(['globex']);
    expect(await everyauth.deleteIdentity('local', remaining.items[0]!.id)).toBe(false); // another service's identity
    expect(await everyauth.deleteIdentity('other', remaining.items[0]!.id)).toBe(true);
    await signIn('/tenant/initech/authorize/gina', 'gina');
    expect(await everyauth.deleteIdentities('other', null)).toBe(1);
  });

  it('names the URL to send the user to when the grant is gone', async () => {
    await signIn('/local/authorize/hank', 'hank');
    await server.revokeGrantsFor('hank');
    const err = await everyauth.getIdentity('local', 'hank', { force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReauthorizationRequired);
    expect((err as ReauthorizationRequired).authorizeUrl).toBe('/local/authorize/hank');
    // Authorizing again at that URL makes the identity usable again.
    await signIn('/local/authorize/hank', 'hank');
    expect(await everyauth.getIdentity('local', 'hank')).toMatchObject({ userId: 'hank' });
  });
});

describe('mounted on a Router', () => {
  it('says how to install the callback route instead of failing at the provider', async () => {
    const server2 = await startAuthServer({ clients: [] });
    const t = await startTestBroker(server2, {});
    const everyauth = createEveryAuth({ broker: t.broker });
    const app = express5();
    const router = express5.Router();
    router.use('/local/authorize/:userId', everyauth.authorize('local', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId }));
    app.use(router);
    const caught: unknown[] = [];
    app.use(((err, _req, res, _next) => {
      caught.push(err);
      res.status(500).end();
    }) as ErrorRequestHandler);
    const http = await listen(app);
    try {
      // The finishedUrl would take the error, but a missing route is the developer's to see: it reaches finishedUrl too.
      const first = location(await new CookieJar().get(`${http.origin}/local/authorize/ann`), http.origin);
      expect(first.searchParams.get('error')).toBe('configuration_error');
      expect(first.searchParams.get('error_description')).toMatch(/app\.use\(everyauth\.callbacks\(\)\)/);

      app.use(everyauth.callbacks());
      const started = await new CookieJar().get(`${http.origin}/local/authorize/ann`);
      expect(location(started, http.origin).origin).toBe(server2.issuer);
    } finally {
      await http.close();
      await t.close();
      await server2.close();
    }
  });
});
