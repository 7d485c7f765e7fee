import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialRefused, InvalidInput, type LocalBroker, type ProviderInput } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { keyedProvider, startApiStandIn, type ApiStandIn } from '../support/api-standin.js';

const GOOD_KEY = 'sk-live0123456789';
const USERNAME = 'ann@example.test';
const PASSWORD = 'tok-0123456789';

let server: AuthServer;
let api: ApiStandIn;
let t: TestBroker;
let broker: LocalBroker;

/** An API-key provider like Anthropic's: `x-api-key`, a test request to GET /v1/me. */
const keyProvider = (origin: string): ProviderInput =>
  keyedProvider(origin, {
    fields: [{ name: 'apiKey', label: 'API key', pattern: 'sk-[a-z0-9]+', help: 'Settings → API keys' }],
    test: { url: `${origin}/v1/me`, errorPath: 'error.message', profile: { id: 'id', name: 'name' } },
  });

/** A Basic provider like Zendesk's API tokens: `{email}/token:{token}`, the subdomain typed on the form. */
const basicProvider = (port: string): ProviderInput => ({
  id: 'basicly',
  name: 'Basicly',
  docs: 'https://example.test/docs',
  kind: 'basic',
  api: { baseUrls: [`http://{host}:${port}/api`] },
  fields: [
    { name: 'host', label: 'Host', secret: false },
    { name: 'email', label: 'Email', secret: false },
    { name: 'token', label: 'API token' },
  ],
  apply: { basic: { username: '{email}/token', password: '{token}' } },
  test: { url: `http://{host}:${port}/api/users/me`, errorPath: 'error', profile: { id: 'user.id', email: 'user.email' } },
});

beforeAll(async () => {
  server = await startAuthServer();
  api = await startApiStandIn();
  api.route('GET /v1/me', (req) =>
    req.headers['x-api-key'] === GOOD_KEY
      ? { status: 200, body: { id: 'acct_1', name: 'Ann' } }
      : // Real APIs do quote the key they refused; EveryAuth must not pass it on.
        {
          status: 401,
          body: { error: { type: 'authentication_error', message: `invalid x-api-key ${String(req.headers['x-api-key'])}` } },
        },
  );
  api.route('GET /api/users/me', (req) => {
    const expected = `Basic ${Buffer.from(`${USERNAME}/token:${PASSWORD}`).toString('base64')}`;
    return req.headers.authorization === expected
      ? { status: 200, body: { user: { id: 42, email: USERNAME } } }
      : { status: 401, body: { error: "Couldn't authenticate you" } };
  });
  api.route('GET /v1/things', () => ({ status: 200, body: [] }));
  t = await startTestBroker(server);
  broker = t.broker;
  await broker.putProvider(keyProvider(api.origin));
  await broker.putProvider(basicProvider(new URL(api.origin).port));
  await broker.putService({ id: 'keyed', providerId: 'keyed' });
  await broker.putService({ id: 'basicly', providerId: 'basicly' });
});
afterAll(async () => {
  await t?.close();
  await api?.close();
  await server?.close();
});

describe('api_key', () => {
  it('checks the key with the test request, stores it, and getIdentity applies it', async () => {
    const summary = await broker.putIdentity({ serviceId: 'keyed', userId: 'ann', fields: { apiKey: GOOD_KEY } });
    expect(summary.profile).toEqual({ id: 'acct_1', name: 'Ann' });
    expect(JSON.stringify(summary)).not.toContain(GOOD_KEY);

    const fresh = await broker.getIdentity('keyed', 'ann');
    expect(fresh!.accessToken).toBeUndefined();
    expect(fresh!.credential).toEqual({ type: 'api_key', headers: { 'x-api-key': GOOD_KEY }, query: {} });
    expect(fresh!.headers()).toEqual({ 'x-api-key': GOOD_KEY });
    const request = fresh!.authorize(new Request(`${api.origin}/v1/things`, { headers: { accept: 'application/json' } }));
    expect(request.headers.get('x-api-key')).toBe(GOOD_KEY);
    expect(request.headers.get('accept')).toBe('application/json');
    expect((await fetch(request)).status).toBe(200);
    // The helpers are not data: a JSON copy of the identity carries the credential, not functions.
    expect(Object.keys(JSON.parse(JSON.stringify(fresh)))).not.toContain('headers');
  });

  it('refuses a wrong key with the provider message, the key removed, and stores nothing', async () => {
    const wrong = 'sk-wrong0000000';
    const error = await broker.putIdentity({ serviceId: 'keyed', userId: 'bob', fields: { apiKey: wrong } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialRefused);
    expect((error as CredentialRefused).code).toBe('credential_refused');
    expect((error as CredentialRefused).providerMessage).toBe('invalid x-api-key [redacted]');
    expect(JSON.stringify((error as CredentialRefused).toJSON())).not.toContain(wrong);
    expect(await broker.findIdentity('keyed', 'bob')).toBeUndefined();
  });

  it('names a malformed, missing or unknown field without echoing the value', async () => {
    const bad = 'not-a-key-SECRET';
    const malformed = await broker.putIdentity({ serviceId: 'keyed', userId: 'bob', fields: { apiKey: bad } }).catch((e: unknown) => e);
    expect(malformed).toBeInstanceOf(InvalidInput);
    expect((malformed as InvalidInput).field).toBe('fields.apiKey');
    expect((malformed as Error).message).toContain('Settings → API keys');
    expect((malformed as Error).message).not.toContain(bad);
    await expect(broker.putIdentity({ serviceId: 'keyed', userId: 'bob', fields: {} })).rejects.toMatchObject({ field: 'fields.apiKey' });
    await expect(broker.putIdentity({ serviceId: 'keyed', userId: 'bob', fields: { apiKey: GOOD_KEY, extra: 'x' } })).rejects.toMatchObject(
      {
        field: 'fields.extra',
      },
    );
    await expect(broker.putIdentity({ serviceId: 'keyed', userId: 'bob', fields: { apiKey: 'sk-a\r\nx-evil: 1' } })).rejects.toBeInstanceOf(
      InvalidInput,
    );
    expect(await broker.findIdentity('keyed', 'bob')).toBeUndefined();
  });

  it('refuses a catalog entry whose test request leaves the declared API hosts', async () => {
    const p = keyProvider(api.origin);
    await expect(broker.putProvider({ ...p, id: 'leaky', test: { ...p.test!, url: 'https://attacker.example/collect' } })).rejects.toThrow(
      /test.url must be on a host of api.baseUrls/,
    );
  });

  it('broker.fetch sends the key where the provider declares it, only under its API base URL', async () => {
    // The proxy takes http only for `localhost` stand-ins, named by host rather than IP.
    await broker.putService({ id: 'keyed', apiBaseUrls: [`http://localhost:${new URL(api.origin).port}`] });
    api.requests.length = 0;
    const response = await broker.fetch('keyed', 'ann', '/v1/things');
    expect(response.status).toBe(200);
    expect(api.requests.at(-1)!.headers['x-api-key']).toBe(GOOD_KEY);
    await expect(broker.fetch('keyed', 'ann', 'https://attacker.example/collect')).rejects.toMatchObject({ code: 'proxy_refused' });
  });

  it('never applies a credential to plain http other than loopback', async () => {
    const fresh = await broker.getIdentity('keyed', 'ann');
    expect(() => fresh!.headers('GET', 'http://api.example.com/v1/things')).toThrow(/only sent over https/);
    expect(fresh!.headers('GET', 'https://api.example.com/v1/things')).toEqual({ 'x-api-key': GOOD_KEY });
  });
});

describe('basic', () => {
  it('fills the host from a non-secret field, sends Basic to the test URL, keeps non-secret fields visible', async () => {
    const summary = await broker.putIdentity({
      serviceId: 'basicly',
      userId: 'ann',
      fields: { host: '127.0.0.1', email: USERNAME, token: PASSWORD },
    });
    expect(summary.profile).toEqual({ id: '42', email: USERNAME });
    const fresh = await broker.getIdentity('basicly', 'ann');
    expect(fresh!.credential.type).toBe('basic');
    expect(fresh!.headers().authorization).toBe(`Basic ${Buffer.from(`${USERNAME}/token:${PASSWORD}`).toString('base64')}`);
    expect(fresh!.native).toEqual({ host: '127.0.0.1', email: USERNAME });
    expect(JSON.stringify(fresh!.native)).not.toContain(PASSWORD);
  });

  it('refuses a wrong token with the provider message; a host value cannot leave the host part', async () => {
    await expect(
      broker.putIdentity({ serviceId: 'basicly', userId: 'cy', fields: { host: '127.0.0.1', email: USERNAME, token: 'wrong-token' } }),
    ).rejects.toMatchObject({ code: 'credential_refused', providerMessage: "Couldn't authenticate you" });
    await expect(
      broker.putIdentity({ serviceId: 'basicly', userId: 'cy', fields: { host: 'evil.example/x?', email: USERNAME, token: PASSWORD } }),
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'variables.host' });
    expect(await broker.findIdentity('basicly', 'cy')).toBeUndefined();
  });
});
