/**
 * The web console in headless Chromium, against a real server (buildServer + console + the
 * sandbox authorization server, on SQLite): sign in, services, connect through the sandbox,
 * refresh, revoke, events; and the three failures a user must be able to read (a bad API key,
 * a session whose key was deleted, a provider error). Every page is screenshotted into
 * artifacts/screenshots/console-*.png, and no page may log a console error it was not expected to.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { LocalBroker, Vault, createKeyRing, openStore, type Store } from '@everyauth/core';
import { buildServer, createApiKey } from '../src/index.js';
import { serverSandbox, type Sandbox } from '../src/sandbox/index.js';
import { keyedProvider, startApiStandIn } from '../../core/test/support/api-standin.js';
import { launchChromium, screenshot } from '../../core/test/support/browser.js';
import { freePort } from './support/server.js';

const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

interface Running {
  url: string;
  app: FastifyInstance;
  store: Store;
  broker: LocalBroker;
  sandbox: Sandbox;
  adminKey: string;
  close(): Promise<void>;
}

/** The server as `everyauth serve` runs it locally: SQLite under .everyauth/, console on, sandbox on. */
async function startEveryAuth(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-console-'));
  const dbPath = join(dir, '.everyauth', 'everyauth.db');
  mkdirSync(join(dir, '.everyauth'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const store = await openStore(dbPath);
  const vault = Vault.fromKeyRing(createKeyRing());
  let broker!: LocalBroker;
  const sandbox = await serverSandbox(url, dbPath, { accessTokenTtl: 60 });
  const app = await buildServer({
    logLevel: 'silent',
    backgroundRefresh: false,
    sandbox,
    broker: (onEvent) =>
      (broker = new LocalBroker({
        logger: pino({ level: 'silent' }),
        refresh: { marginMs: 10_000, attempts: 1 },
        store,
        vault,
        baseUrl: url,
        onEvent,
      })),
  });
  await app.listen({ port, host: '127.0.0.1' });
  const { key } = await createApiKey(store, { name: 'console test admin', scopes: ['admin'] });
  return {
    url,
    app,
    store,
    broker,
    sandbox,
    adminKey: key,
    async close() {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A page that records console errors and uncaught exceptions; `expectErrors` lets a step allow some. */
interface WatchedPage {
  page: Page;
  context: BrowserContext;
  errors: string[];
  /** Removes (and returns) the recorded errors matching the pattern; the rest stay to fail the test. */
  takeErrors(pattern: RegExp): string[];
}

let browser: Browser;
let server: Running;
const opened: WatchedPage[] = [];

async function openPage(viewport = DESKTOP): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  // Revoke and delete ask for confirmation; the tests confirm.
  page.on('dialog', (dialog) => void dialog.accept());
  const watched: WatchedPage = {
    page,
    context,
    errors,
    takeErrors(pattern) {
      const taken = errors.filter((e) => pattern.test(e));
      const kept = errors.filter((e) => !pattern.test(e));
      errors.splice(0, errors.length, ...kept);
      return taken;
    },
  };
  opened.push(watched);
  return watched;
}

async function shot(page: Page, name: string): Promise<void> {
  await screenshot(page, 'console', name);
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(`${server.url}/console/`);
  await page.fill('#api-key', key);
  await page.click('#sign-in');
  await page.waitForSelector('#nav:not([hidden])');
}

/** Runs "connect" for a user through the sandbox's sign-in and consent pages, back to the console. */
async function connectThroughSandbox(
  page: Page,
  userId: string,
  login: string,
  options: { tags?: string; screenshots?: boolean } = {},
): Promise<void> {
  await page.goto(`${server.url}/console/#/connect`);
  await page.waitForSelector('#connect-form');
  expect(await page.inputValue('#connect-service')).toBe('sandbox');
  await page.fill('#connect-user', userId);
  if (options.tags) await page.fill('#connect-tags', options.tags);
  await page.click('#connect');
  // The sandbox asks only what it does not know yet: sign-in once per browser, consent once per grant.
  await page.waitForSelector('#login, #allow, #flow-result');
  if (await page.isVisible('#login')) {
    await page.fill('#login', login);
    if (options.screenshots) await shot(page, 'sandbox-sign-in');
    await page.click('#sign-in');
    await page.waitForSelector('#allow, #flow-result');
  }
  if (await page.isVisible('#allow')) {
    if (options.screenshots) await shot(page, 'sandbox-consent');
    await page.click('#allow');
  }
  await page.waitForSelector('#flow-result');
}

beforeAll(async () => {
  [browser, server] = await Promise.all([launchChromium(), startEveryAuth()]);
});

afterEach(async () => {
  // Checked after each test: whatever a page logged as an error and the test did not expect.
  const unexpected = opened.flatMap((p) => p.errors);
  await Promise.all(opened.splice(0).map((p) => p.context.close()));
  expect(unexpected, 'console errors').toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('console, desktop', () => {
  it('signs in, adds a service from the catalog, connects a sandbox user, refreshes and revokes it', async () => {
    const { page, takeErrors } = await openPage();
    await page.goto(`${server.url}/console/`);
    await page.waitForSelector('#sign-in-form');
    await shot(page, 'sign-in');

    // A bad API key: a readable refusal, and the key is not kept.
    await page.fill('#api-key', `ea_0123456789abcdef_${'x'.repeat(43)}`);
    await page.click('#sign-in');
    await page.waitForSelector('#sign-in-status .message.error');
    expect(await page.textContent('#sign-in-status')).toMatch(/That API key was not accepted\..*not valid/);
    expect(await page.evaluate(() => window.sessionStorage.length)).toBe(0);
    await shot(page, 'bad-key');
    expect(takeErrors(/status of 401/)).toHaveLength(1); // the browser logs the refused request itself

    await page.fill('#api-key', server.adminKey);
    await page.click('#sign-in');
    await page.waitForSelector('#no-identities');
    expect(page.url()).not.toContain(server.adminKey);
    await shot(page, 'identities-empty');

    // Services: the sandbox is there with its redirect URL; add Asana from the catalog.
    await page.click('a[data-route="services"]');
    await page.waitForSelector('[data-service="sandbox"]');
    expect(await page.inputValue('#redirect-sandbox')).toBe(`${server.url}/sandbox/callback`);
    await page.click('#add-service');
    // The picker filters by kind and searches as `provider ls --kind api_key --search mail` does.
    await page.selectOption('#catalog-kind', 'api_key');
    await page.fill('#catalog-search', 'mail');
    await page.waitForSelector('[data-provider="mailerlite"]');
    const kinds = await page.$$eval('#catalog-results [data-provider] .mono', (spans) => spans.map((s) => s.textContent ?? ''));
    expect(kinds.length).toBeGreaterThan(0);
    for (const text of kinds) expect(text).toContain('· api_key');
    expect(await page.$('[data-provider="mailgun"]')).toBeNull(); // Basic, not api_key
    await page.selectOption('#catalog-kind', '');
    await page.fill('#catalog-search', 'asana');
    await page.click('[data-provider="asana"]');
    await page.waitForSelector('#service-form');
    await shot(page, 'service-add');
    await page.fill('#client-id', '1200000000000001');
    await page.fill('#client-secret', 'asana-secret-for-console-test');
    await page.click('#save-service');
    await page.waitForSelector('[data-service="asana"]');
    expect(await page.inputValue('#redirect-asana')).toBe(`${server.url}/asana/callback`);
    expect(await page.textContent('[data-service="asana"]')).toContain('set');
    expect(await page.textContent('main')).not.toContain('asana-secret-for-console-test');
    await shot(page, 'services');
    expect(await server.broker.getService('asana')).toMatchObject({ clientId: '1200000000000001', hasClientSecret: true });

    // Edit: new scopes, the secret left empty keeps the one set.
    await page.click('[data-service="asana"] >> text=Edit');
    await page.waitForSelector('#service-form');
    expect(await page.getAttribute('#client-secret', 'placeholder')).toMatch(/leave empty to keep/);
    await page.fill('#scopes', 'default email');
    await page.click('#save-service');
    await page.waitForSelector('[data-service="asana"] >> text=Scopes: default email');
    expect(await server.broker.getService('asana')).toMatchObject({ scopes: ['default', 'email'], hasClientSecret: true });

    // Connect: the whole flow through the sandbox's pages and back.
    await connectThroughSandbox(page, 'alice-test', 'alice', { tags: 'plan=trial', screenshots: true });
    expect(await page.textContent('#flow-result')).toContain('Connected alice-test on sandbox.');
    await shot(page, 'connected');

    await page.click('a[href="#/identities"]');
    const row = page.locator('tr[data-user="alice-test"]');
    await row.waitFor();
    expect(await row.locator('[data-status]').textContent()).toBe('active');
    expect(await row.textContent()).toContain('plan=trial');
    expect(await row.textContent()).toContain('alice@sandbox.everyauth.test');
    expect(await row.locator('[data-expires]').textContent()).toMatch(/^in (\d+ s|1:00 min)$/); // a 60-second token
    expect(await row.locator('[data-ago]').textContent()).toBe('never');
    const expiresBefore = await row.locator('[data-expires]').getAttribute('data-expires');
    await shot(page, 'identities');

    // Refresh now: a new token at the sandbox, the row's expiry and last refresh move.
    await page.waitForTimeout(1100); // so the new expiry differs from the first at one-second resolution
    await row.locator('[data-action="refresh"]').click();
    await page.waitForSelector('#toast .info');
    expect(await page.textContent('#toast')).toMatch(/^Refreshed alice-test on sandbox/);
    await page.waitForFunction(() => document.querySelector('tr[data-user="alice-test"] [data-ago]')?.textContent === 'just now');
    expect(await row.locator('[data-expires]').getAttribute('data-expires')).not.toBe(expiresBefore);
    await shot(page, 'identities-refreshed');

    // Events: created + refreshed in the log, one refresh in the chart.
    await page.click('a[data-route="events"]');
    await page.waitForSelector('#events');
    expect(await page.locator('#events tr[data-event="identity.refreshed"]').count()).toBe(1);
    expect(await page.locator('#events tr[data-event="identity.created"]').count()).toBe(1);
    expect(await page.textContent('#chart-summary')).toBe('Last 30 minutes: 1 refreshed, 0 failed.');
    expect(await page.locator('#refresh-chart rect.refreshed').count()).toBe(1);
    await shot(page, 'events');

    // Revoke: the grant ends at the sandbox and the identity is gone.
    await page.click('a[data-route="identities"]');
    await row.locator('[data-action="revoke"]').click();
    await page.waitForSelector('#no-identities');
    expect(await page.textContent('#toast')).toBe('Revoked alice-test on sandbox.');
    expect(await server.sandbox.revokeGrantsFor('alice')).toBe(0); // nothing left to revoke: RFC 7009 revocation reached it
    await page.click('a[data-route="events"]');
    await page.waitForSelector('#events tr[data-event="identity.deleted"]');
    expect(await page.textContent('#events tr[data-event="identity.deleted"]')).toContain('revoked at the provider');
  });

  it('adds an API-key service with no client to set up, and connects a user through the hosted form', async () => {
    const key = 'sk-console0123456789';
    const api = await startApiStandIn();
    try {
      api.route('GET /v1/me', (req) =>
        req.headers['x-api-key'] === key
          ? { status: 200, body: { id: 'acct_c' } }
          : { status: 401, body: { error: { message: 'Invalid API key' } } },
      );
      await server.broker.putProvider(
        keyedProvider(api.origin, { name: 'Keyed API', fields: [{ name: 'apiKey', label: 'API key', help: 'Settings → API keys' }] }),
      );
      const { page, takeErrors } = await openPage();
      await signIn(page, server.adminKey);
      await page.click('a[data-route="services"]');
      await page.click('#add-service');
      await page.fill('#catalog-search', 'keyed');
      await page.click('[data-provider="keyed"]');
      await page.waitForSelector('#clientless');
      expect(await page.isVisible('#client-id')).toBe(false);
      await page.click('#save-service');
      await page.waitForSelector('[data-service="keyed"]');

      await page.goto(`${server.url}/console/#/connect/keyed`);
      await page.waitForSelector('#connect-form');
      await page.fill('#connect-user', 'kim');
      await page.click('#connect');
      await page.waitForSelector('#f_apiKey');
      await page.fill('#f_apiKey', 'sk-not-it');
      await page.click('button[type=submit]');
      await page.waitForSelector('[role=alert]');
      expect(await page.textContent('[role=alert]')).toBe('Invalid API key');
      expect(takeErrors(/status of 400/)).toHaveLength(1); // the browser logs the refused post itself
      await page.fill('#f_apiKey', key);
      await shot(page, 'connect-api-key-form');
      await page.click('button[type=submit]');
      await page.waitForSelector('#flow-result');
      expect(await page.textContent('#flow-result')).toContain('Connected kim on keyed');
      expect((await server.broker.findIdentity('keyed', 'kim'))?.profile.id).toBe('acct_c');
    } finally {
      await api.close();
    }
  });

  it('shows a provider error from the callback, and a failed refresh, as readable messages', async () => {
    const { page, takeErrors } = await openPage();
    await signIn(page, server.adminKey);

    // The user cancels at the sandbox: the callback carries error=access_denied back to the console.
    await page.goto(`${server.url}/console/#/connect`);
    await page.fill('#connect-user', 'carol-test');
    await page.click('#connect');
    await page.waitForSelector('#cancel');
    await page.click('#cancel');
    await page.waitForSelector('#flow-result .message.error');
    const text = await page.textContent('#flow-result');
    expect(text).toContain('The authorization failed: access_denied');
    expect(text).toContain('The user denied the authorization at the sandbox.');
    expect(page.url()).toBe(`${server.url}/console/#/connect`); // the outcome left the address bar
    await shot(page, 'provider-error');
    expect(await server.broker.findIdentity('sandbox', 'carol-test')).toBeUndefined();

    // A grant revoked behind EveryAuth's back: "Refresh now" says the user must authorize again.
    await connectThroughSandbox(page, 'dave-test', 'dave');
    expect(await server.sandbox.revokeGrantsFor('dave')).toBe(1);
    await page.goto(`${server.url}/console/#/identities`);
    const row = page.locator('tr[data-user="dave-test"]');
    await row.locator('[data-action="refresh"]').click();
    await page.waitForSelector('#toast .error');
    expect(await page.textContent('#toast')).toMatch(/no longer valid; send the user to authorize again/);
    await page.waitForFunction(() => document.querySelector('tr[data-user="dave-test"] [data-status]')?.textContent === 'needs reauth');
    await shot(page, 'refresh-failed');
    expect(takeErrors(/status of 409/)).toHaveLength(1);

    await page.click('a[data-route="events"]');
    await page.waitForSelector('#events tr[data-event="identity.needs_reauth"]');
    expect(await page.textContent('#chart-summary')).toMatch(/, 1 failed\.$/);
    expect(await page.locator('#refresh-chart rect.failed').count()).toBe(1);

    // Reconnect: the flow again for this same identity, straight to the provider, which makes it active again.
    const before = (await server.broker.findIdentity('sandbox', 'dave-test'))!;
    await page.click('a[data-route="identities"]');
    await row.locator('[data-action="reconnect"]').click();
    await page.waitForSelector('#allow'); // the sandbox remembers dave's sign-in; only consent is asked again
    await page.click('#allow');
    await page.waitForSelector('#flow-result .message.ok');
    const after = (await server.broker.findIdentity('sandbox', 'dave-test'))!;
    expect(after).toMatchObject({ id: before.id, status: 'active' });

    // A health check from the row: the sandbox's userinfo answers, so it is healthy.
    await page.click('a[data-route="identities"]');
    await row.locator('[data-action="check"]').click();
    await page.waitForFunction(() => document.querySelector('tr[data-user="dave-test"] [data-healthy]')?.textContent === 'healthy');
  });

  it('sends an expired session back to sign-in with a message', async () => {
    const { page, takeErrors } = await openPage();
    const response = await fetch(`${server.url}/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'short-lived', scopes: ['admin'] }),
    });
    const created = (await response.json()) as { id: string; key: string };
    await signIn(page, created.key);
    await page.waitForSelector('#identities table, #no-identities');

    // The key is deleted while the page is open; the next thing the user does finds out.
    const deleted = await fetch(`${server.url}/v1/api-keys/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(deleted.status).toBe(204);
    await page.click('a[data-route="services"]');
    await page.waitForSelector('#sign-in-form');
    expect(await page.textContent('#sign-in-form')).toMatch(/Your session ended: .*not valid.*Sign in again/);
    expect(await page.evaluate(() => window.sessionStorage.length)).toBe(0);
    await shot(page, 'session-ended');
    expect(takeErrors(/status of 401/)).toHaveLength(1);
  });
});

describe('console, phone-sized (390×844)', () => {
  it('every page fits the width and keeps its actions reachable', async () => {
    const { page } = await openPage(PHONE);
    await signIn(page, server.adminKey);
    await connectThroughSandbox(page, 'erin-phone', 'erin', { tags: 'device=phone' });
    // A user id that is markup stays text: the console never builds HTML from data.
    const markup = '<img src=x onerror="window.__injected=1">';
    await connectThroughSandbox(page, markup, 'erin');

    for (const [route, ready] of [
      ['identities', 'tr[data-user="erin-phone"]'],
      ['services', '[data-service="sandbox"]'],
      ['connect', '#connect-form'],
      ['events', '#events'],
    ] as const) {
      await page.goto(`${server.url}/console/#/${route}`);
      await page.waitForSelector(ready);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${route} is wider than the screen`).toBeLessThanOrEqual(0);
      // Nor may a table scroll sideways inside its panel: on a phone each row is a card that fits.
      const clipped = await page.evaluate(
        () => [...document.querySelectorAll('.table-wrap')].filter((e) => e.scrollWidth > e.clientWidth).length,
      );
      expect(clipped, `${route} has a table wider than its panel`).toBe(0);
      await shot(page, `phone-${route}`);
    }

    // The stacked identity card still has its buttons on screen, and they work.
    await page.goto(`${server.url}/console/#/identities`);
    await page.waitForSelector('tr[data-user="erin-phone"]');
    expect(await page.locator('tr', { hasText: markup }).count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { __injected?: number }).__injected)).toBeUndefined();
    const refresh = page.locator('tr[data-user="erin-phone"] [data-action="refresh"]');
    const box = (await refresh.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
    await refresh.tap();
    await page.waitForSelector('#toast .info');

    await page.tap('#sign-out');
    await page.waitForSelector('#sign-in-form');
    expect(await page.evaluate(() => window.sessionStorage.length)).toBe(0);
  });
});

describe('console assets', () => {
  it('are served with a strict content security policy, and unknown names are 404s', async () => {
    const page = await fetch(`${server.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const script = await fetch(`${server.url}/console/assets/app.js`);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    for (const path of ['/console/assets/..%2Fplugin.ts', '/console/assets/index.html', '/console/assets/nope.js']) {
      expect((await fetch(`${server.url}${path}`)).status, path).toBe(404);
    }
    for (const path of ['/', '/console']) {
      const redirect = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      expect(redirect.headers.get('location'), path).toBe('/console/');
    }
  });
});
