/**
 * `everyauth.connect()` embedded (issue 15): the page lists each service's state for the signed-in
 * user, its buttons run the authorize routes, and a revoked grant shows as needing reconnect and
 * comes back as the same identity.
 */
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEveryAuth, type EveryAuth } from '@everyauth/express';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, startTestBroker, type TestBroker } from '../../core/test/support/broker.js';
import { CookieJar, listen, location } from './support/app.js';

let server: AuthServer;
let t: TestBroker;
let everyauth: EveryAuth;
let http: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  server = await startAuthServer({ clients: [], accessTokenTtl: 3600 });
  everyauth = createEveryAuth();
  const app = express();
  for (const id of ['local', 'other'])
    app.use(
      `/${id}/authorize/:userId`,
      everyauth.authorize(id, { finishedUrl: '/connections-back', mapToUserId: (req) => req.params.userId }),
    );
  app.get(
    '/u/:userId/connections',
    everyauth.connect({ services: ['local', 'other'], mapToUserId: (req) => req.params.userId, finishedUrl: '/home' }),
  );
  app.get('/nobody/connections', everyauth.connect({ services: ['local'], mapToUserId: () => undefined }));
  app.get('/connections-back', (req, res) => void res.json(req.query));
  http = await listen(app);
  t = await startTestBroker(server, { baseUrl: http.origin, extraServices: ['other'] });
  await server.addClient({
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${http.origin}/local/callback`, `${http.origin}/other/callback`],
  });
  everyauth.config({ broker: t.broker });
});
afterAll(async () => {
  await http?.close();
  await t?.close();
  await server?.close();
});

const stateOf = (html: string, serviceId: string) => new RegExp(`data-service="${serviceId}" data-state="([a-z_]+)"`).exec(html)?.[1];
const hrefOf = (html: string, serviceId: string) =>
  new RegExp(`data-service="${serviceId}"[\\s\\S]*?href="([^"]+)"`).exec(html)?.[1]?.replace(/&#38;/g, '&');

/** Follows a button through the provider's sign-in and the callback, as a browser would. */
async function follow(browser: CookieJar, href: string, login: string): Promise<void> {
  const start = await browser.get(new URL(href, http.origin));
  const callback = await server.authorize(location(start, http.origin), { login });
  const done = await browser.get(callback);
  expect(done.status).toBe(302);
}

describe('everyauth.connect()', () => {
  it("lists the user's services, connects one, and reconnects the same identity after a revoked grant", async () => {
    const browser = new CookieJar();
    const page = async () => (await browser.get(`${http.origin}/u/carla/connections`)).text();
    let html = await page();
    expect(stateOf(html, 'local')).toBe('none');
    expect(stateOf(html, 'other')).toBe('none');
    expect(html).toContain('href="/home"');

    await follow(browser, hrefOf(html, 'local')!, 'carla');
    html = await page();
    expect(stateOf(html, 'local')).toBe('active');
    expect(stateOf(html, 'other')).toBe('none');
    const before = (await t.broker.findIdentity('local', 'carla'))!;

    await server.revokeGrantsFor('carla');
    await t.broker.getIdentity('local', before.id, { force: true }).catch(() => undefined);
    html = await page();
    expect(stateOf(html, 'local')).toBe('needs_reauth');
    expect(html).toContain('Reconnect');
    await follow(browser, hrefOf(html, 'local')!, 'carla');
    expect(stateOf(await page(), 'local')).toBe('active');
    expect((await t.broker.findIdentity('local', 'carla'))!.id).toBe(before.id);
  });

  it('answers 401 without a signed-in user, and refuses a call without services', async () => {
    expect((await fetch(`${http.origin}/nobody/connections`)).status).toBe(401);
    expect(() => everyauth.connect({ services: [], mapToUserId: () => 'x' })).toThrow(/services/);
  });
});
