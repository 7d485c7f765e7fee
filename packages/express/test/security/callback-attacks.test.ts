import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express5, { type ErrorRequestHandler } from 'express';
import fc from 'fast-check';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EveryAuthError, createEveryAuth, type EveryAuth } from '@everyauth/express';
import { startAuthServer, type AuthServer } from '../../../core/test/support/auth-server.js';
import { launchChromium } from '../../../core/test/support/browser.js';
import { CLIENT_ID, CLIENT_SECRET, startTestBroker, type StoreKind, type TestBroker } from '../../../core/test/support/broker.js';
import { captureLogs, expectNoSecrets, type CapturedLogs } from '../../../core/test/security/support.js';
import { CookieJar, listen, location } from '../support/app.js';

// @ts-expect-error: Express 4 is installed under an alias without its own types; its API is the one used here.
import express4Module from 'express4';
const express4 = express4Module as typeof express5;

/**
 * RFC 9700 client-side attacks through HTTP, against a real Express app with the embedded
 * middleware, a real oidc-provider and (for Referer leakage) a real Chromium.
 */

const KINDS: { name: string; express: typeof express5; store: StoreKind }[] = [
  { name: 'Express 5 on SQLite', express: express5, store: 'sqlite' },
  { name: 'Express 4 on PostgreSQL', express: express4, store: 'postgres' },
];

const FOREIGN_FINISHED_URLS = [
  'https://evil.example/x',
  '//evil.example',
  '/\\evil.example',
  '/.//evil.example',
  '/%2e//evil.example',
  'https://app.example@evil.example',
  'javascript:alert(1)',
  'java\tscript:alert(1)',
];

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({ clients: [], accessTokenTtl: 60 });
});
afterAll(() => server?.close());

describe.each(KINDS)('$name', ({ express, store }) => {
  let everyauth: EveryAuth;
  let t: TestBroker;
  let http: Awaited<ReturnType<typeof listen>>;
  let logs: CapturedLogs;
  /** Errors the app's error handler received; each must be a typed EveryAuth error. */
  const errors: unknown[] = [];
  const secrets = new Set<string>([CLIENT_SECRET]);

  beforeAll(async () => {
    logs = captureLogs();
    everyauth = createEveryAuth();
    const app = express();
    app.use('/local/authorize/:userId', everyauth.authorize('local', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId! }));
    app.use(
      '/page/authorize/:userId',
      everyauth.authorize('page', {
        mapToUserId: (req) => req.params.userId!,
        // The app renders its own page at the callback URL, which still holds the code and state.
        onAuthorized: (_req, _identity, res) => void res.type('html').send('<!doctype html><img src="/same-origin.png"><p>Welcome</p>'),
      }),
    );
    FOREIGN_FINISHED_URLS.forEach((finishedUrl, i) => {
      app.use(`/evil${i}/authorize/:userId`, everyauth.authorize('evil', { finishedUrl, mapToUserId: (req) => req.params.userId! }));
    });
    app.get('/done', (req, res) => void res.json(req.query));
    app.get('/same-origin.png', (_req, res) => void res.status(204).end());
    app.use(((err, _req, res, _next) => {
      // Express's own 400s (a route parameter that is not valid percent-encoding) never reach EveryAuth.
      if (!(err instanceof URIError)) errors.push(err);
      res.status(err.status ?? 500).json({ handled: err.code ?? 'error' });
    }) as ErrorRequestHandler);
    http = await listen(app);
    t = await startTestBroker(server, {
      kind: store,
      baseUrl: http.origin,
      extraServices: ['page', 'evil'],
      logger: logs.logger,
      providerTimeoutMs: 1000,
    });
    await server.addClient({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${http.origin}/local/callback`, `${http.origin}/page/callback`],
    });
    everyauth.config({ broker: t.broker, logger: logs.logger });
  });
  afterAll(async () => {
    expectNoSecrets(logs.text(), secrets);
    for (const err of errors) expect(err, String(err)).toBeInstanceOf(EveryAuthError);
    await http?.close();
    await t?.close();
  });

  async function identities() {
    return (await t.broker.listIdentities(undefined, {}, { count: 1000 })).items;
  }

  /** A browser starts the flow and logs in; the callback URL it would be sent to is returned unfetched. */
  async function startFlow(browser: CookieJar, path: string, login: string) {
    const start = await browser.get(`${http.origin}${path}`);
    expect(start.status).toBe(302);
    const callback = await server.authorize(location(start, http.origin), { login });
    secrets.add(callback.searchParams.get('code')!);
    secrets.add(callback.searchParams.get('state')!);
    for (const v of browser.cookies(http.origin).values()) secrets.add(v);
    return callback;
  }

  /** Opens a callback in a browser and expects the user at /done with an error, nothing stored. */
  async function refusedAtDone(browser: CookieJar, url: string | URL, error = 'invalid_request') {
    const before = await identities();
    const landed = await browser.get(url);
    expect(landed.status).toBe(302);
    const finished = location(landed, http.origin);
    expect(finished.origin).toBe(http.origin);
    expect(finished.pathname).toBe('/done');
    expect(finished.searchParams.get('error')).toBe(error);
    expect(await identities()).toEqual(before);
    return finished;
  }

  describe('CSRF and replay (RFC 9700 §4.7)', () => {
    it('a callback without state, or with a state never issued, lands on /done with an error and stores nothing', async () => {
      const browser = new CookieJar();
      const callback = await startFlow(browser, '/local/authorize/csrf-1', 'csrf-1');
      const noState = new URL(callback);
      noState.searchParams.delete('state');
      // Without a state the flow is unknown; the service has one finishedUrl, so the error goes there.
      expect((await refusedAtDone(browser, noState)).searchParams.get('error_description')).toMatch(/no "state"/);
      const foreign = new URL(callback);
      foreign.searchParams.set('state', 'A'.repeat(43));
      expect((await refusedAtDone(browser, foreign)).searchParams.get('error_description')).toMatch(/unknown/);
    });

    it("the attacker's callback opened in the victim's browser (which holds its own flow cookie) fails", async () => {
      const attacker = new CookieJar();
      const victim = new CookieJar();
      const attackersCallback = await startFlow(attacker, '/local/authorize/mallory', 'mallory');
      await startFlow(victim, '/local/authorize/victim', 'victim');
      const finished = await refusedAtDone(victim, attackersCallback);
      expect(finished.searchParams.get('error_description')).toMatch(/different browser/);
      expect((await identities()).map((i) => i.userId)).not.toContain('mallory');
    });

    it("a completed callback replayed in the same browser, and in another browser's cookie jar, fails", async () => {
      const browser = new CookieJar();
      const callback = await startFlow(browser, '/local/authorize/replayed', 'replayed');
      const cookies = new Map(browser.cookies(http.origin));
      const first = await browser.get(callback);
      expect(location(first, http.origin).searchParams.get('userId')).toBe('replayed');
      const stored = await identities();
      await refusedAtDone(browser, callback);
      // Another browser given a copy of the first one's cookie jar (stolen cookie + callback).
      const thief = new CookieJar();
      thief.cookies(http.origin); // creates the jar
      const jar = (thief as unknown as { jars: Map<string, Map<string, string>> }).jars;
      jar.set(http.origin, cookies);
      expect((await refusedAtDone(thief, callback)).searchParams.get('error_description')).toMatch(/already used/);
      expect(await identities()).toEqual(stored);
    });
  });

  describe('code injection and mix-up', () => {
    it("the victim's code in the attacker's own callback (with the attacker's cookie) fails at the provider: PKCE", async () => {
      const victimsCallback = await startFlow(new CookieJar(), '/local/authorize/victim2', 'victim2');
      const attacker = new CookieJar();
      const attackersCallback = await startFlow(attacker, '/local/authorize/attacker2', 'attacker2');
      const injected = new URL(attackersCallback);
      injected.searchParams.set('code', victimsCallback.searchParams.get('code')!);
      await refusedAtDone(attacker, injected, 'invalid_grant');
    });

    it('an iss that is not the provider is refused before any token request', async () => {
      const browser = new CookieJar();
      const callback = await startFlow(browser, '/local/authorize/mixup', 'mixup');
      callback.searchParams.set('iss', 'https://evil.example');
      const before = server.tokenRequests.total;
      expect((await refusedAtDone(browser, callback)).searchParams.get('error_description')).toMatch(/RFC 9207/);
      expect(server.tokenRequests.total).toBe(before);
    });

    it("a response for one service delivered to another service's callback fails", async () => {
      const browser = new CookieJar();
      const callback = await startFlow(browser, '/local/authorize/cross', 'cross');
      const wrong = new URL(callback);
      wrong.pathname = '/page/callback';
      // The flow (found by its state) has a finishedUrl, so the user lands there with the error.
      expect((await refusedAtDone(browser, wrong)).searchParams.get('error_description')).toMatch(/another service/);
    });
  });

  describe('open redirect through finishedUrl', () => {
    it.each(FOREIGN_FINISHED_URLS.map((u, i) => [u, i] as const))('%s: never redirected to; the app gets the error', async (_url, i) => {
      const response = await new CookieJar().get(`${http.origin}/evil${i}/authorize/u`);
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(errors.at(-1)).toMatchObject({ code: 'invalid_input', field: 'finishedUrl' });
    });
  });

  describe('token leakage through Referer (RFC 9700 §4.2.4)', () => {
    it('every callback response says Referrer-Policy: no-referrer and Cache-Control: no-store', async () => {
      const ok = new CookieJar();
      const cb = await startFlow(ok, '/local/authorize/referer-ok', 'referer-ok');
      const responses = [
        await ok.get(cb),
        await new CookieJar().get(`${http.origin}/local/callback?state=x&code=y`),
        await new CookieJar().get(`${http.origin}/page/callback?state=x&code=y`),
      ];
      for (const r of responses) {
        expect(r.headers.get('referrer-policy')).toBe('no-referrer');
        expect(r.headers.get('cache-control')).toMatch(/no-store/);
      }
    });
  });

  describe('hostile requests never hang and never 500', () => {
    const HOSTILE_PATHS = [
      `/local/callback?state=${'s'.repeat(6000)}&code=${'c'.repeat(6000)}`,
      '/local/callback?state=%E0%A4%A&code=%FF%FE',
      '/local/callback?state=a&state=b&code=c',
      '/local/callback?state[]=a&code[x]=b',
      '/local/callback?state=%00&code=%00&iss=%00',
      '/local/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E',
      '/local/callback?state=x&code=y&iss=javascript:alert(1)',
      '/local%2Fcallback?state=x&code=y',
      '/LOCAL/callback?state=x&code=y',
      '/nope/callback?state=x&code=y',
      '/local/callback/?state=x&code=y',
      '/local/authorize/%00',
      '/local/authorize/%E0%A4%A',
      `/local/authorize/${'u'.repeat(5000)}`,
      '/local/authorize/idn_0000',
    ];

    it.each(HOSTILE_PATHS.map((p) => [p.slice(0, 70), p]))('%s', async (_name, path) => {
      const started = Date.now();
      const response = await fetch(`${http.origin}${path}`, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
      await response.body?.cancel();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(response.status).toBeLessThan(500);
      const where = response.headers.get('location');
      if (where) expect(new URL(where, http.origin).origin).not.toBe('https://evil.example');
    });

    it('an oversized Cookie header is answered (431), not hung', async () => {
      const response = await fetch(`${http.origin}/local/callback?state=x&code=y`, {
        headers: { cookie: `everyauth_flow_local=${'b'.repeat(40_000)}` },
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(431);
    });

    it('a provider that resets the code exchange: the browser is answered with an error at once', async () => {
      const browser = new CookieJar();
      const callback = await startFlow(browser, '/local/authorize/reset', 'reset');
      server.failNextTokenRequests(1, { reset: true });
      await refusedAtDone(browser, callback, 'temporarily_unavailable');
    });

    it('a provider slower than the timeout: answered within the timeout', async () => {
      const browser = new CookieJar();
      const callback = await startFlow(browser, '/local/authorize/slow', 'slow');
      server.failNextTokenRequests(1, { delayMs: 3000 });
      const started = Date.now();
      await refusedAtDone(browser, callback, 'temporarily_unavailable');
      expect(Date.now() - started).toBeLessThan(2500);
    });

    it('property: arbitrary callback query strings get a typed answer below 500, and store nothing', async () => {
      const before = await identities();
      const param = fc.tuple(
        fc.constantFrom('state', 'code', 'iss', 'error', 'error_description', 'x'),
        fc.string({ unit: 'binary', maxLength: 40 }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(param, { maxLength: 5 }), fc.constantFrom('local', 'page'), async (params, serviceId) => {
          const query = new URLSearchParams(params).toString();
          const response = await fetch(`${http.origin}/${serviceId}/callback?${query}`, {
            redirect: 'manual',
            signal: AbortSignal.timeout(5000),
          });
          await response.body?.cancel();
          expect(response.status).toBeLessThan(500);
          expect([302, 400]).toContain(response.status);
        }),
        { numRuns: 100 },
      );
      expect(await identities()).toEqual(before);
    });
  });
});

describe('Referer leakage in a real browser (Chromium)', () => {
  let browser: Browser;
  let t: TestBroker;
  let http: Awaited<ReturnType<typeof listen>>;
  let thirdParty: Server;
  let thirdPartyOrigin: string;
  const seenReferers: { path: string; referer?: string }[] = [];

  beforeAll(async () => {
    thirdParty = createServer((req, res) => {
      seenReferers.push({ path: req.url ?? '', referer: (req.headers as IncomingHttpHeaders).referer });
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => thirdParty.listen(0, '127.0.0.1', resolve));
    thirdPartyOrigin = `http://localhost:${(thirdParty.address() as AddressInfo).port}`; // another origin than 127.0.0.1
    const everyauth = createEveryAuth();
    const app = express5();
    app.use(
      '/page/authorize/:userId',
      everyauth.authorize('page', {
        mapToUserId: (req) => req.params.userId!,
        onAuthorized: (_req, _identity, res) =>
          void res
            .type('html')
            .send(
              `<!doctype html><img src="/pixel.png"><img src="${thirdPartyOrigin}/pixel.png"><a id="out" href="${thirdPartyOrigin}/clicked">out</a>`,
            ),
      }),
    );
    app.use('/local/authorize/:userId', everyauth.authorize('local', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId! }));
    app.get('/pixel.png', (req, res) => {
      seenReferers.push({ path: '/same-origin', referer: req.headers.referer });
      res.status(204).end();
    });
    app.get('/done', (_req, res) => void res.type('html').send(`<!doctype html><img src="${thirdPartyOrigin}/done-pixel.png">`));
    http = await listen(app);
    t = await startTestBroker(server, { baseUrl: http.origin, extraServices: ['page'] });
    await server.addClient({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${http.origin}/local/callback`, `${http.origin}/page/callback`],
    });
    everyauth.config({ broker: t.broker });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await http?.close();
    await t?.close();
    await new Promise<void>((resolve) => {
      thirdParty?.closeAllConnections();
      thirdParty?.close(() => resolve());
    });
  });

  /** Starts the flow in Chromium (which gets the binding cookie), logs in over HTTP, and opens the callback in Chromium. */
  async function runFlow(path: string, login: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    let authorizationUrl: string | undefined;
    // Chromium goes to the provider (and gets the binding cookie on the way); the login itself is driven over HTTP.
    page.on('request', (request) => {
      if (request.url().startsWith(`${server.issuer}/auth`)) authorizationUrl ??= request.url();
    });
    await page.goto(`${http.origin}${path}`);
    const callback = await server.authorize(authorizationUrl!, { login });
    await page.goto(callback.href, { waitUntil: 'networkidle' });
    return { context, page, callback };
  }

  it('the page the app renders at the callback URL leaks the code to no one: same-origin or third-party', async () => {
    seenReferers.length = 0;
    const { context, page, callback } = await runFlow('/page/authorize/browser-user', 'browser-user');
    await page.click('#out');
    await page.waitForLoadState('networkidle');
    await context.close();
    const code = callback.searchParams.get('code')!;
    expect(seenReferers.map((r) => r.path)).toEqual(expect.arrayContaining(['/same-origin', '/pixel.png', '/clicked']));
    for (const seen of seenReferers) {
      expect(seen.referer ?? '', seen.path).not.toContain(code);
      expect(seen.referer ?? '', seen.path).not.toContain('state=');
    }
  });

  it('after the redirect to finishedUrl, neither the page nor its requests carry the code', async () => {
    seenReferers.length = 0;
    const { context, page, callback } = await runFlow('/local/authorize/browser-user2', 'browser-user2');
    expect(new URL(page.url()).pathname).toBe('/done');
    const code = callback.searchParams.get('code')!;
    expect(page.url()).not.toContain(code);
    expect(await page.evaluate(() => document.referrer)).not.toContain(code);
    await context.close();
    expect(seenReferers.map((r) => r.path)).toContain('/done-pixel.png');
    for (const seen of seenReferers) expect(seen.referer ?? '').not.toContain(code);
  });
});
