import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialRefused, type RemoteBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { authorizeUser } from '../../core/test/support/broker.js';
import { keyedProvider, startApiStandIn, type ApiStandIn } from '../../core/test/support/api-standin.js';
import { APP_ORIGIN, startTestServer, type TestServer } from './support/server.js';

const KEY = 'sk-remote0123456789';

let as: AuthServer;
let api: ApiStandIn;
let t: TestServer;
let remote: RemoteBroker;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  api = await startApiStandIn();
  api.route('GET /v1/me', (req) =>
    req.headers.authorization === `Bearer ${KEY}`
      ? { status: 200, body: { id: 'acct_9' } }
      : { status: 401, body: { error: { message: 'Incorrect API key provided' } } },
  );
  t = await startTestServer(as);
  remote = t.remote();
  await remote.putProvider(keyedProvider(api.origin, { apply: { headers: { Authorization: 'Bearer {apiKey}' } } }));
  await remote.putService({ id: 'keyed', providerId: 'keyed' });
});
afterAll(async () => {
  await t?.close();
  await api?.close();
  await as?.close();
});

describe('POST /v1/identities', () => {
  it('stores a checked API key without echoing it; getIdentity over HTTP carries the credential and its helpers', async () => {
    const response = await t.request('/v1/identities', {
      method: 'POST',
      json: { serviceId: 'keyed', userId: 'ann', fields: { apiKey: KEY } },
    });
    const text = await response.text();
    expect(response.status).toBe(201);
    expect(text).not.toContain(KEY);
    expect(JSON.parse(text)).toMatchObject({ serviceId: 'keyed', userId: 'ann', profile: { id: 'acct_9' } });

    const fresh = await remote.getIdentity('keyed', 'ann');
    expect(fresh!.credential).toEqual({ type: 'api_key', headers: { authorization: `Bearer ${KEY}` }, query: {} });
    expect(fresh!.headers('GET', `${api.origin}/v1/me`)).toEqual({ authorization: `Bearer ${KEY}` });
  });

  it('answers a refused key with the typed error and the provider message; a reader key may not store', async () => {
    const error = await remote.putIdentity({ serviceId: 'keyed', userId: 'bob', fields: { apiKey: 'sk-nope' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialRefused);
    expect((error as CredentialRefused).providerMessage).toBe('Incorrect API key provided');
    expect((error as CredentialRefused).status).toBe(400);
    const denied = await t.request('/v1/identities', {
      method: 'POST',
      key: t.readerKey,
      json: { serviceId: 'keyed', userId: 'bob', fields: { apiKey: KEY } },
    });
    expect(denied.status).toBe(403);
    expect(await remote.findIdentity('keyed', 'bob')).toBeUndefined();
  });

  it('imports an OAuth 2 grant from elsewhere by its refresh token, proven by a refresh', async () => {
    // The "other broker": the same app's grant for user mo, obtained by the code flow.
    await authorizeUser(t.broker, as, 'mo');
    const row = await t.store.getIdentity((await t.broker.findIdentity('local', 'mo'))!.id);
    const { r: refreshToken } = JSON.parse(t.broker.vault.open(row!.tokens, `identity:${row!.id}`)) as { r: string };
    as.resetCounters();
    const imported = await remote.putIdentity({ serviceId: 'local', userId: 'mo-imported', tokens: { refreshToken } });
    expect(as.tokenRequests.byGrant).toEqual({ refresh_token: 1 });
    expect(imported.profile.id).toBe('mo');
    const fresh = await remote.getIdentity('local', 'mo-imported');
    expect((await as.userinfo(fresh!.accessToken!)).status).toBe(200);

    const bogus = await remote
      .putIdentity({ serviceId: 'local', userId: 'zed', tokens: { refreshToken: 'not-a-token' } })
      .catch((e: unknown) => e);
    expect(bogus).toBeInstanceOf(CredentialRefused);
    expect(await remote.findIdentity('local', 'zed')).toBeUndefined();
  });
});

describe('the hosted credential form', () => {
  it('POST /v1/sessions links to the form; a wrong key shows the refusal, a good one lands on finishedUrl', async () => {
    const session = await t.request('/v1/sessions', {
      method: 'POST',
      json: { serviceId: 'keyed', userId: 'cy', finishedUrl: `${APP_ORIGIN}/done` },
    });
    expect(session.status).toBe(201);
    const { url } = (await session.json()) as { url: string };
    expect(new URL(url).pathname).toBe('/v1/sessions/form');

    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    const cookie = page.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/SameSite=Strict/);
    const html = await page.text();
    const csrf = /name="everyauth_csrf" value="([^"]+)"/.exec(html)![1]!;
    const ticket = /name="t" value="([^"]+)"/.exec(html)![1]!;
    const post = (apiKey: string, headers: Record<string, string> = { cookie: cookie.split(';')[0]! }, token = csrf) =>
      fetch(`${t.url}/v1/sessions/form`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ t: ticket, everyauth_csrf: token, apiKey }),
        redirect: 'manual',
      });

    expect((await post(KEY, {})).status).toBe(403);
    const refused = await post('sk-badbadbad');
    expect(refused.status).toBe(400);
    const refusedHtml = await refused.text();
    expect(refusedHtml).toContain('Incorrect API key provided');
    expect(refusedHtml).not.toContain('sk-badbadbad');
    expect(await remote.findIdentity('keyed', 'cy')).toBeUndefined();

    const ok = await post(KEY);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe(`${APP_ORIGIN}/done?userId=cy&serviceId=keyed`);
    expect((await remote.findIdentity('keyed', 'cy'))?.profile.id).toBe('acct_9');
  });
});

describe('POST /v1/services/register', () => {
  it('registers a client at an issuer with registration on, over the API', async () => {
    const open = await startAuthServer({ registration: true, clients: [] });
    try {
      const service = await remote.registerService({ serviceId: 'reg', url: open.issuer });
      expect(service).toMatchObject({ id: 'reg', hasClientSecret: true });
      expect((await open.provider.Client.find(service.clientId)).redirectUris).toEqual([service.redirectUrl]);
      await expect(remote.registerService({ serviceId: 'noreg', url: as.issuer })).rejects.toMatchObject({ code: 'invalid_input' });
    } finally {
      await open.close();
    }
  });
});
