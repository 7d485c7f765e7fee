import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CredentialRefused, InvalidInput, ProxyRefused, type LocalBroker, type ProviderInput } from '@everyauth/core';
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

/** A stand-in DNS for names under example.test (a host typed into the form); everything else resolves as usual. */
const answers: Record<string, string> = {
  'metadata.example.test': '169.254.169.254',
  'intranet.example.test': '10.0.0.5',
  'loop.example.test': '127.0.0.1',
};
const lookup: LookupFunction = (hostname, options, callback) => {
  const address = answers[hostname];
  if (address === undefined) return dnsLookup(hostname, options, callback);
  return options.all
    ? (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, [{ address, family: 4 }])
    : callback(null, address, 4);
};

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
  t = await startTestBroker(server, { proxy: { lookup, connectTimeoutMs: 300 }, providerTimeoutMs: 2_000 });
  broker = t.broker;
  await broker.putProvider(keyProvider(api.origin));
  await broker.putProvider(basicProvider(new URL(api.origin).port));
  await broker.putService({ id: 'keyed', providerId: 'keyed' });
  await broker.putService({ id: 'basicly', providerId: 'basicly' });
  // The same over https, as a real API's: a credential goes to a host typed by name only over TLS.
  const tls = basicProvider(new URL(api.origin).port);
  const https = (url: string) => url.replace('http:', 'https:');
  await broker.putProvider({
    ...tls,
    id: 'basicly-tls',
    api: { baseUrls: tls.api!.baseUrls!.map(https) },
    test: { ...tls.test!, url: https(tls.test!.url) },
  });
  await broker.putService({ id: 'basicly-tls', providerId: 'basicly-tls' });
  // A self-hosted install: the service's variable, not the form, names the host.
  await broker.putProvider({
    ...tls,
    id: 'selfhosted',
    api: { baseUrls: tls.api!.baseUrls!.map(https) },
    test: { ...tls.test!, url: https(tls.test!.url) },
    fields: tls.fields!.filter((f) => f.name !== 'host'),
    variables: { host: { description: 'The API host' } },
  });
  await broker.putService({ id: 'selfhosted', providerId: 'selfhosted', variables: { host: 'intranet.example.test' } });
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
      fields: { host: 'localhost', email: USERNAME, token: PASSWORD },
    });
    expect(summary.profile).toEqual({ id: '42', email: USERNAME });
    const fresh = await broker.getIdentity('basicly', 'ann');
    expect(fresh!.credential.type).toBe('basic');
    expect(fresh!.headers().authorization).toBe(`Basic ${Buffer.from(`${USERNAME}/token:${PASSWORD}`).toString('base64')}`);
    expect(fresh!.native).toEqual({ host: 'localhost', email: USERNAME });
    expect(JSON.stringify(fresh!.native)).not.toContain(PASSWORD);
  });

  it('refuses a wrong token with the provider message; a host value cannot leave the host part', async () => {
    await expect(
      broker.putIdentity({ serviceId: 'basicly', userId: 'cy', fields: { host: 'localhost', email: USERNAME, token: 'wrong-token' } }),
    ).rejects.toMatchObject({ code: 'credential_refused', providerMessage: "Couldn't authenticate you" });
    await expect(
      broker.putIdentity({ serviceId: 'basicly', userId: 'cy', fields: { host: 'evil.example/x?', email: USERNAME, token: PASSWORD } }),
    ).rejects.toMatchObject({
      code: 'invalid_input',
      field: 'fields.host',
      message: expect.stringContaining('Host (host) is not allowed'),
    });
    expect(await broker.findIdentity('basicly', 'cy')).toBeUndefined();
  });
});

describe('where the test request may go', () => {
  const put = (host: string) =>
    broker
      .putIdentity({ serviceId: 'basicly-tls', userId: 'mallory', fields: { host, email: USERNAME, token: PASSWORD } })
      .catch((e: Error) => e);
  beforeEach(() => {
    api.requests.length = 0;
  });

  it('refuses a typed IP address, however the URL parser would read it, before sending anything', async () => {
    // The metadata address plain, in hex parts, as one decimal number; a private and the loopback address.
    for (const host of ['169.254.169.254', '0xa9.0xfe.0xa9.0xfe', '2852039166', '10.0.0.5', '127.0.0.1']) {
      const err = await put(host);
      expect(err, host).toBeInstanceOf(InvalidInput);
      expect((err as InvalidInput).field).toBe('fields.host');
      expect((err as Error).message).toContain('Host (host) must be a host name, not an IP address');
    }
    expect(api.requests).toHaveLength(0);
    expect(await broker.findIdentity('basicly-tls', 'mallory')).toBeUndefined();
  });

  it('refuses a typed name that resolves to the metadata address, a private network or loopback', async () => {
    const refusals = {
      'metadata.example.test': 'link-local, metadata',
      'intranet.example.test': 'private-network address',
      'loop.example.test': 'loopback address',
    };
    for (const [host, why] of Object.entries(refusals)) {
      const err = await put(host);
      expect(err, host).toBeInstanceOf(ProxyRefused);
      expect((err as Error).message).toContain(`${host} resolves to a ${why}`);
    }
    expect(api.requests).toHaveLength(0);
    expect(await broker.findIdentity('basicly-tls', 'mallory')).toBeUndefined();
  });
  it("lets a host the service's own variables name be on its private network, not on the metadata address", async () => {
    const put = () => broker.putIdentity({ serviceId: 'selfhosted', userId: 'ann', fields: { email: USERNAME, token: PASSWORD } });
    // Nothing answers at 10.0.0.5: the connection fails, but not by the rule.
    await expect(put()).rejects.toMatchObject({ code: 'provider_unavailable' });
    answers['intranet.example.test'] = '169.254.169.254';
    try {
      await expect(put()).rejects.toBeInstanceOf(ProxyRefused);
    } finally {
      answers['intranet.example.test'] = '10.0.0.5';
    }
  });
});
