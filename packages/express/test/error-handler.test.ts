import express5, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEveryAuth, type EveryAuth } from '@everyauth/express';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, startTestBroker, type TestBroker } from '../../core/test/support/broker.js';
import { CookieJar, listen, location } from './support/app.js';

// @ts-expect-error: Express 4 is installed under an alias without its own types; its API is the one used here.
import express4Module from 'express4';
const express4 = express4Module as typeof express5;

const VERSIONS = [
  { name: 'Express 5', express: express5, version: 5 },
  { name: 'Express 4', express: express4, version: 4 },
];

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({ clients: [], accessTokenTtl: 60 });
});
afterAll(() => server?.close());

describe.each(VERSIONS)('everyauth.errorHandler() on $name', ({ express, version }) => {
  let everyauth: EveryAuth;
  let t: TestBroker;
  let http: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    everyauth = createEveryAuth();
    const app = express();
    app.use('/local/authorize/:userId', everyauth.authorize('local', { finishedUrl: '/done', mapToUserId: (req) => req.params.userId }));
    app.get('/done', (req, res) => void res.json(req.query));
    const calendar: RequestHandler = async (req, res) => {
      const serviceId = String(req.query.service ?? 'local');
      const identity = await everyauth.getIdentity(serviceId, String(req.query.userId), { force: req.query.force === '1' });
      res.json({ hasToken: Boolean(identity?.accessToken) });
    };
    // Express 5 sends a rejected promise to the error handlers; Express 4 needs it handed to next().
    app.get('/calendar', version === 5 ? calendar : (req, res, next) => void (calendar(req, res, next) as Promise<void>).catch(next));
    app.get('/boom', () => {
      throw new Error('not an EveryAuth error');
    });
    app.use(everyauth.errorHandler());
    app.use(((err, _req, res, _next) => void res.status(500).json({ reachedNextHandler: (err as Error).message })) as ErrorRequestHandler);
    http = await listen(app);
    t = await startTestBroker(server, { baseUrl: http.origin });
    await server.addClient({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${http.origin}/local/callback`] });
    everyauth.config({ broker: t.broker });
  });
  afterAll(async () => {
    await http?.close();
    await t?.close();
  });

  async function signIn(userId: string) {
    const browser = new CookieJar();
    const atProvider = location(await browser.get(`${http.origin}/local/authorize/${userId}`), http.origin);
    const landed = await browser.get(await server.authorize(atProvider, { login: userId }));
    expect(location(landed, http.origin).pathname).toBe('/done');
  }

  it('redirects a user whose grant was revoked to the service authorize route, which starts the flow again', async () => {
    const user = `hank${version}`;
    await signIn(user);
    expect(await (await fetch(`${http.origin}/calendar?userId=${user}`)).json()).toEqual({ hasToken: true });
    await server.revokeGrantsFor(user);

    const response = await fetch(`${http.origin}/calendar?userId=${user}&force=1`, { redirect: 'manual' });
    expect(response.status).toBe(303);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const again = location(response, http.origin);
    expect(again.pathname).toBe(`/local/authorize/${user}`);
    expect(location(await new CookieJar().get(again), http.origin).origin).toBe(server.issuer);
  });

  it('answers another EveryAuth error with its status and a page naming its code, never a stack trace', async () => {
    const json = await fetch(`${http.origin}/calendar?userId=`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(400);
    const body = (await json.json()) as { error: string; message: string };
    expect(body).toMatchObject({ error: 'invalid_input', retryable: false });

    const page = await fetch(`${http.origin}/calendar?userId=`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(400);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('<code>invalid_input</code>');
    expect(html).toContain(body.message.replace(/"/g, '&quot;'));
    expect(html).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it('passes errors that are not EveryAuth errors on to the next handler', async () => {
    const response = await fetch(`${http.origin}/boom`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ reachedNextHandler: 'not an EveryAuth error' });
  });
});
