/**
 * Connect links in headless Chromium against oidc-provider (issue 15): one link connects two
 * services end to end at phone size and ends at the app's finishedUrl; the page shows a revoked
 * grant as "Needs reconnect" and reconnects the same identity; an expired, a reused and a
 * forwarded link are each refused with a readable page. Screenshots go to artifacts/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { keyedProvider, startApiStandIn, type ApiStandIn } from '../../core/test/support/api-standin.js';
import { launchChromium, screenshot } from '../../core/test/support/browser.js';
import { startTestServer, type TestServer } from './support/server.js';
import { serverDb } from '../src/tables.js';

const PHONE = { width: 390, height: 844 };

let as: AuthServer;
let t: TestServer;
let browser: Browser;
let api: ApiStandIn;
const KEY = 'sk-connect0123456789';

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  [t, browser] = await Promise.all([startTestServer(as, { services: ['local', 'other'] }), launchChromium()]);
});
afterAll(async () => {
  await api?.close();
  await browser?.close();
  await t?.close();
  await as?.close();
});

const json = async (r: Response) => (await r.json()) as any;

async function link(body: Record<string, unknown>): Promise<{ token: string; url: string; expiresAt: string }> {
  const r = await t.request('/v1/connect-sessions', { method: 'POST', key: t.readerKey, json: body });
  expect(r.status, await r.clone().text()).toBe(201);
  return json(r);
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  return context.newPage();
}

const stateOf = (page: Page, serviceId: string) => page.getAttribute(`tr[data-service="${serviceId}"]`, 'data-state');

/** Clicks a service's button on the connect page and goes through the provider's sign-in and consent. */
async function connect(page: Page, serviceId: string, login: string): Promise<void> {
  await page.click(`tr[data-service="${serviceId}"] a.button`);
  await page.waitForSelector('#login, #allow, tr[data-service]');
  if (await page.isVisible('#login')) {
    await page.fill('#login', login);
    await page.click('#sign-in');
    await page.waitForSelector('#allow, tr[data-service]');
  }
  if (await page.isVisible('#allow')) await page.click('#allow');
  await page.waitForSelector('tr[data-service]');
}

describe('connect links', () => {
  it('refuse bad input with a clear error', async () => {
    const unknown = await t.request('/v1/connect-sessions', { method: 'POST', json: { userId: 'u', allowedServices: ['nope'] } });
    expect(unknown.status).toBe(400);
    expect(await json(unknown)).toMatchObject({ field: 'allowedServices' });
    const tooLong = await t.request('/v1/connect-sessions', {
      method: 'POST',
      json: { userId: 'u', allowedServices: ['local'], lifetimeMinutes: 24 * 60 + 1 },
    });
    expect(tooLong.status).toBe(400);
    const foreign = await t.request('/v1/connect-sessions', {
      method: 'POST',
      json: { userId: 'u', allowedServices: ['local'], finishedUrl: 'https://elsewhere.test/' },
    });
    expect(foreign.status).toBe(400);
  });

  it('connect two services end to end on a phone, then Done goes to finishedUrl; the link is then used up', async () => {
    const made = await link({
      userId: 'phone-user',
      tenantId: 'acme',
      tags: { plan: 'pro' },
      allowedServices: ['local', 'other'],
      finishedUrl: '/app/finished',
    });
    expect(Date.parse(made.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(Date.parse(made.expiresAt) - Date.now()).toBeLessThanOrEqual(30 * 60_000);
    const page = await newPage();
    await page.goto(made.url);
    expect(await stateOf(page, 'local')).toBe('none');
    expect(await stateOf(page, 'other')).toBe('none');
    await screenshot(page, 'connect', 'page-phone');

    await connect(page, 'local', 'phone-user');
    expect(await stateOf(page, 'local')).toBe('active');
    expect(await page.textContent('.message.ok')).toContain('is connected');
    await connect(page, 'other', 'phone-user');
    expect(await stateOf(page, 'other')).toBe('active');
    await screenshot(page, 'connect', 'page-connected');

    const identities = (await json(await t.request('/v1/identities?userId=phone-user'))).items;
    expect(identities.map((i: any) => i.serviceId).sort()).toEqual(['local', 'other']);
    for (const i of identities) expect(i).toMatchObject({ tenantId: 'acme', tags: { plan: 'pro' }, status: 'active' });

    const [finished] = await Promise.all([page.waitForURL(/\/app\/finished/), page.click('#done')]);
    expect(finished).toBeUndefined();
    const url = new URL(page.url());
    expect(url.pathname).toBe('/app/finished');
    expect(url.searchParams.get('userId')).toBe('phone-user');

    const reused = await page.goto(made.url);
    expect(reused!.status()).toBe(410);
    expect(await page.textContent('h1')).toBe('This link was already used');
    await page.context().close();
  });

  it('a forwarded link is refused in the second browser; an expired one everywhere', async () => {
    const made = await link({ userId: 'fwd-user', allowedServices: ['local'] });
    const first = await newPage();
    expect((await first.goto(made.url))!.status()).toBe(200);
    const second = await newPage();
    const forwarded = await second.goto(made.url);
    expect(forwarded!.status()).toBe(403);
    expect(await second.textContent('h1')).toBe('This link was opened in another browser');
    await screenshot(second, 'connect', 'forwarded');
    // Nor can the second browser start a flow with it.
    expect((await second.goto(`${t.url}/connect/start?t=${made.token}&service=local`))!.status()).toBe(403);
    expect((await first.reload())!.status()).toBe(200);

    await serverDb(t.store)
      .updateTable('connect_sessions')
      .set({ expires_at: Date.now() - 1 })
      .execute();
    const expired = await first.goto(made.url);
    expect(expired!.status()).toBe(410);
    expect(await first.textContent('h1')).toBe('This link has expired');
    const unknown = await first.goto(`${t.url}/connect?t=cs_nope`);
    expect(unknown!.status()).toBe(404);
    await first.context().close();
    await second.context().close();
  });

  it('runs the credential form for an API-key service and comes back to the page', async () => {
    api = await startApiStandIn();
    api.route('GET /v1/me', (req) =>
      req.headers['x-api-key'] === KEY
        ? { status: 200, body: { id: 'acct_1' } }
        : { status: 401, body: { error: { message: 'Invalid API key' } } },
    );
    await t.broker.putProvider(keyedProvider(api.origin));
    await t.broker.putService({ id: 'keyed', providerId: 'keyed' });
    const made = await link({ userId: 'form-user', allowedServices: ['keyed'] });
    const page = await newPage();
    await page.goto(made.url);
    expect(await stateOf(page, 'keyed')).toBe('none');
    await page.click('tr[data-service="keyed"] a.button');
    await page.fill('#f_apiKey', KEY);
    await Promise.all([page.waitForURL(/\/connect\?/), page.click('button[type=submit]')]);
    await page.waitForSelector('tr[data-service]');
    expect(await stateOf(page, 'keyed')).toBe('active');
    expect((await t.broker.getIdentity('keyed', 'form-user'))!.headers()).toEqual({ 'x-api-key': KEY });
    await page.context().close();
  });

  it('shows a revoked grant as needing reconnect and reconnects the same identity', async () => {
    const made = await link({ userId: 'rc-phone', allowedServices: ['local'] });
    const page = await newPage();
    await page.goto(made.url);
    await connect(page, 'local', 'rc-phone');
    const before = (await json(await t.request('/v1/identities?userId=rc-phone'))).items[0];

    await as.revokeGrantsFor('rc-phone');
    expect((await t.request(`/v1/services/local/identities/${before.id}/token?force=true`)).status).toBe(409);
    await page.reload();
    expect(await stateOf(page, 'local')).toBe('needs_reauth');
    expect(await page.textContent('tr[data-service="local"] a.button')).toBe('Reconnect');
    await connect(page, 'local', 'rc-phone');
    expect(await stateOf(page, 'local')).toBe('active');
    const after = await json(await t.request(`/v1/identities/${before.id}`));
    expect(after).toMatchObject({ id: before.id, status: 'active' });
    expect((await t.remote().listEvents({ identityId: before.id })).at(-1)!.type).toBe('identity.reconnected');
    await page.context().close();
  });
});
