import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEveryAuth, type EveryAuth } from '@everyauth/express';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { startTestBroker, type TestBroker } from '../../core/test/support/broker.js';
import { keyedProvider, startApiStandIn, type ApiStandIn } from '../../core/test/support/api-standin.js';
import { launchChromium } from '../../core/test/support/browser.js';
import { startTestServer, type TestServer } from '../../server/test/support/server.js';
import { listen } from './support/app.js';

const KEY = 'sk-form0123456789';

let server: AuthServer;
let api: ApiStandIn;
let t: TestBroker;
let everyauth: EveryAuth;
let http: Awaited<ReturnType<typeof listen>>;
let browser: Browser;

beforeAll(async () => {
  server = await startAuthServer();
  api = await startApiStandIn();
  api.route('GET /v1/me', (req) =>
    req.headers['x-api-key'] === KEY
      ? { status: 200, body: { id: 'acct_form' } }
      : { status: 401, body: { error: { message: `Invalid API key: ${String(req.headers['x-api-key'])}` } } },
  );
  everyauth = createEveryAuth();
  const app = express();
  app.use('/keyed/connect/:userId', everyauth.authorize('keyed', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId }));
  app.use('/hosted/connect/:userId', everyauth.authorize('hosted', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId }));
  app.get('/done', (req, res) => void res.json(req.query));
  http = await listen(app);
  t = await startTestBroker(server, { baseUrl: http.origin });
  await t.broker.putProvider(
    keyedProvider(api.origin, {
      name: 'Keyed <API>',
      fields: [
        { name: 'account', label: 'Account name', secret: false },
        { name: 'apiKey', label: 'API key', help: 'Settings → Keys' },
      ],
    }),
  );
  await t.broker.putService({ id: 'keyed', providerId: 'keyed' });
  // Grafana's shape: the API host is typed into the form.
  const port = new URL(api.origin).port;
  await t.broker.putProvider(
    keyedProvider(api.origin, {
      id: 'hosted',
      api: { baseUrls: [`https://{host}:${port}`] },
      fields: [
        { name: 'host', label: 'Grafana host', secret: false, help: 'e.g. yourstack.grafana.net' },
        { name: 'apiKey', label: 'API key' },
      ],
      test: { url: `https://{host}:${port}/v1/me`, profile: { id: 'id' } },
    }),
  );
  await t.broker.putService({ id: 'hosted', providerId: 'hosted' });
  everyauth.config({ broker: t.broker });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await http?.close();
  await t?.close();
  await api?.close();
  await server?.close();
});

describe('the embedded credential form', () => {
  it('in a browser: shows the fields, shows the provider refusal without the key, then stores a good key and lands on finishedUrl', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${http.origin}/keyed/connect/ann`);
      expect(await page.title()).toBe('Connect Keyed <API>');
      expect(await page.getAttribute('#f_apiKey', 'type')).toBe('password');
      await page.fill('#f_account', 'acme');
      await page.fill('#f_apiKey', 'sk-wrong999');
      await page.click('button[type=submit]');
      expect(await page.textContent('[role=alert]')).toBe('Invalid API key: [redacted]');
      expect(await page.content()).not.toContain('sk-wrong999');
      expect(await page.inputValue('#f_account')).toBe('acme'); // non-secret values are kept
      expect(await page.inputValue('#f_apiKey')).toBe('');
      expect(await t.broker.findIdentity('keyed', 'ann')).toBeUndefined();

      await page.fill('#f_apiKey', KEY);
      await Promise.all([page.waitForURL(/\/done/), page.click('button[type=submit]')]);
      expect(JSON.parse((await page.textContent('body'))!)).toEqual({ userId: 'ann', serviceId: 'keyed' });
    } finally {
      await page.close();
    }
    const fresh = await everyauth.getIdentity('keyed', 'ann');
    expect(fresh!.headers()).toEqual({ 'x-api-key': KEY });
    expect(fresh!.native).toEqual({ account: 'acme' });
  });

  it('refuses a post without the matching anti-CSRF cookie (a cross-site form), storing nothing', async () => {
    const page = await fetch(`${http.origin}/keyed/connect/mallory`);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const cookie = page.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const csrf = /name="everyauth_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const post = (headers: Record<string, string>, token: string) =>
      fetch(`${http.origin}/keyed/connect/mallory`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ everyauth_csrf: token, account: 'x', apiKey: KEY }),
        redirect: 'manual',
      });
    expect((await post({}, csrf)).status).toBe(403); // the attacker's page cannot send the cookie
    expect((await post({ cookie: cookie.split(';')[0]! }, 'forged')).status).toBe(403);
    expect(await t.broker.findIdentity('keyed', 'mallory')).toBeUndefined();
    const ok = await post({ cookie: cookie.split(';')[0]! }, csrf);
    expect(ok.status).toBe(303);
    expect(await t.broker.findIdentity('keyed', 'mallory')).toBeDefined();
  });
});

describe('a host typed into the form', () => {
  it('is refused as an IP address (the metadata address here), naming the field; nothing is sent or stored', async () => {
    const page = await fetch(`${http.origin}/hosted/connect/mallory`);
    const cookie = page.headers.getSetCookie()[0]!.split(';')[0]!;
    const csrf = /name="everyauth_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    api.requests.length = 0;
    const post = await fetch(`${http.origin}/hosted/connect/mallory`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ everyauth_csrf: csrf, host: '169.254.169.254', apiKey: KEY }),
      redirect: 'manual',
    });
    expect(post.status).toBe(400);
    expect(await post.text()).toContain(
      'Grafana host (host) must be a host name, not an IP address: type the name of the host, e.g. yourstack.grafana.net.',
    );
    expect(api.requests).toHaveLength(0);
    expect(await t.broker.findIdentity('hosted', 'mallory')).toBeUndefined();
  });
});

describe('the hosted credential form, through a RemoteBroker', () => {
  let remoteApp: Awaited<ReturnType<typeof listen>>;
  let everyauthServer: TestServer;

  beforeAll(async () => {
    const remoteEveryAuth = createEveryAuth();
    const app = express();
    app.use(
      '/keyed/connect/:userId',
      remoteEveryAuth.authorize('keyed', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId }),
    );
    app.get('/done', (req, res) => void res.json(req.query));
    remoteApp = await listen(app);
    everyauthServer = await startTestServer(server, { broker: { allowedRedirectOrigins: [remoteApp.origin] } });
    const remote = everyauthServer.remote();
    await remote.putProvider(await t.broker.getProvider('keyed'));
    await remote.putService({ id: 'keyed', providerId: 'keyed' });
    remoteEveryAuth.config({ broker: remote, baseUrl: remoteApp.origin });
  });
  afterAll(async () => {
    await remoteApp?.close();
    await everyauthServer?.close();
  });

  it('in a browser: the app sends the user to the server form, which posts and lands back on the app (form-action allows it)', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${remoteApp.origin}/keyed/connect/rae`);
      expect(new URL(page.url()).origin).toBe(everyauthServer.url);
      await page.fill('#f_account', 'remote-acme');
      await page.fill('#f_apiKey', KEY);
      await Promise.all([page.waitForURL(`${remoteApp.origin}/done**`), page.click('button[type=submit]')]);
      expect(JSON.parse((await page.textContent('body'))!)).toEqual({ userId: 'rae', serviceId: 'keyed' });
    } finally {
      await page.close();
    }
    expect((await everyauthServer.broker.getIdentity('keyed', 'rae'))!.headers()).toEqual({ 'x-api-key': KEY });
  });
});
