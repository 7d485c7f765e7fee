import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { startApiStandIn, type ApiStandIn } from '../support/api-standin.js';

/**
 * broker.fetch with credential kinds other than an OAuth 2 bearer token: each applies itself (a key
 * header, a key in the query, Basic), and a base URL may take its host from the identity's own
 * non-secret form values. The stand-in listens on 127.0.0.1 and is reached by the name `localhost`.
 */
const KEY = 'sk-live0123456789';

let server: AuthServer;
let api: ApiStandIn;
let t: TestBroker;
let broker: LocalBroker;
let origin: string;

beforeAll(async () => {
  server = await startAuthServer();
  api = await startApiStandIn();
  origin = api.origin.replace('127.0.0.1', 'localhost');
  const port = new URL(api.origin).port;
  api.route('GET /v1/me', (req) => (req.headers['x-api-key'] === KEY ? { status: 200, body: { id: 'acct_1' } } : { status: 401 }));
  api.route('GET /v1/things', (req) => ({ status: 200, body: { key: req.headers['x-api-key'] ?? null, query: req.url.search } }));
  api.route('GET /q/me', (req) => (req.url.searchParams.get('key') === KEY ? { status: 200, body: { id: 'acct_2' } } : { status: 401 }));
  api.route('GET /q/things', (req) => ({ status: 200, body: { query: req.url.search } }));
  api.route('GET /api/users/me', () => ({ status: 200, body: { user: { id: 42 } } }));
  api.route('GET /api/tickets', (req) => ({ status: 200, body: { authorization: req.headers.authorization } }));
  t = await startTestBroker(server);
  broker = t.broker;
  const base = { docs: 'https://example.test/docs', test: { errorPath: 'error', profile: { id: 'id' } } };
  await broker.putProvider({
    ...base,
    id: 'keyed',
    name: 'Keyed',
    kind: 'api_key',
    api: { baseUrls: [`${origin}/v1`] },
    fields: [{ name: 'apiKey', label: 'API key' }],
    apply: { headers: { 'X-Api-Key': '{apiKey}' } },
    test: { ...base.test, url: `${origin}/v1/me` },
  });
  await broker.putProvider({
    ...base,
    id: 'queried',
    name: 'Queried',
    kind: 'api_key',
    api: { baseUrls: [`${origin}/q`] },
    fields: [{ name: 'apiKey', label: 'API key' }],
    apply: { query: { key: '{apiKey}' } },
    test: { ...base.test, url: `${origin}/q/me` },
  });
  await broker.putProvider({
    ...base,
    id: 'basicly',
    name: 'Basicly',
    kind: 'basic',
    api: { baseUrls: [`http://{host}:${port}/api`] },
    fields: [
      { name: 'host', label: 'Host', secret: false },
      { name: 'token', label: 'API token' },
    ],
    apply: { basic: { username: 'me/token', password: '{token}' } },
    test: { errorPath: 'error', profile: { id: 'user.id' }, url: `http://{host}:${port}/api/users/me` },
  });
  for (const id of ['keyed', 'queried', 'basicly']) await broker.putService({ id, providerId: id });
  await broker.putIdentity({ serviceId: 'keyed', userId: 'ann', fields: { apiKey: KEY } });
  await broker.putIdentity({ serviceId: 'queried', userId: 'ann', fields: { apiKey: KEY } });
  await broker.putIdentity({ serviceId: 'basicly', userId: 'ann', fields: { host: 'localhost', token: 'tok-1' } });
});
afterAll(async () => {
  await t?.close();
  await api?.close();
  await server?.close();
});

describe('broker.fetch with other credential kinds', () => {
  it('puts an API key in its header', async () => {
    const response = await broker.fetch('keyed', 'ann', '/things');
    expect(await response.json()).toEqual({ key: KEY, query: '' });
  });

  it("replaces the caller's own field of the key's name, whatever its case", async () => {
    const response = await broker.fetch('keyed', 'ann', '/things', { headers: { 'x-api-key': 'forged', 'X-API-KEY': 'forged too' } });
    expect(await response.json()).toEqual({ key: KEY, query: '' });
  });

  it('puts an API key in the query, keeping the caller’s parameters', async () => {
    const response = await broker.fetch('queried', 'ann', '/things?page=2');
    expect(await response.json()).toEqual({ query: `?page=2&key=${KEY}` });
  });

  it("sends Basic to the host the identity's own form values name", async () => {
    const response = await broker.fetch('basicly', 'ann', '/tickets');
    const expected = `Basic ${Buffer.from('me/token:tok-1').toString('base64')}`;
    expect(await response.json()).toEqual({ authorization: expected });
    expect(api.requests.at(-1)!.headers.host).toBe(new URL(origin).host);
  });

  it("takes an edited custom provider's base URLs from the next request on", async () => {
    api.route('GET /v1/moved', () => ({ status: 200, body: { at: 'v1' } }));
    api.route('GET /v2/moved', () => ({ status: 200, body: { at: 'v2' } }));
    const provider = {
      docs: 'https://example.test/docs',
      id: 'edited',
      name: 'Edited',
      kind: 'api_key' as const,
      fields: [{ name: 'apiKey', label: 'API key' }],
      apply: { headers: { 'X-Api-Key': '{apiKey}' } },
    };
    const at = (path: string) => ({ api: { baseUrls: [`${origin}${path}`] }, test: { errorPath: 'error', url: `${origin}${path}/me` } });
    await broker.putProvider({ ...provider, ...at('/v1') });
    await broker.putService({ id: 'edited', providerId: 'edited' });
    await broker.putIdentity({ serviceId: 'edited', userId: 'ann', fields: { apiKey: KEY } });
    expect(await (await broker.fetch('edited', 'ann', '/moved')).json()).toEqual({ at: 'v1' });
    await broker.putProvider({ ...provider, ...at('/v2') });
    expect(await (await broker.fetch('edited', 'ann', '/moved')).json()).toEqual({ at: 'v2' });
    // The old base URL no longer receives the key.
    await expect(broker.fetch('edited', 'ann', `${origin}/v1/moved`)).rejects.toMatchObject({ code: 'proxy_refused' });
    await broker.deleteService('edited');
    await broker.deleteProvider('edited');
  });

  it("takes a service's edited variables into its provider's base URLs from the next request on", async () => {
    api.route('GET /eu/where', () => ({ status: 200, body: { region: 'eu' } }));
    api.route('GET /us/where', () => ({ status: 200, body: { region: 'us' } }));
    api.route('GET /eu/me', () => ({ status: 200, body: { id: 'acct_eu' } }));
    await broker.putProvider({
      docs: 'https://example.test/docs',
      id: 'regional',
      name: 'Regional',
      kind: 'api_key',
      variables: { region: { description: 'Region' } },
      api: { baseUrls: [`${origin}/{region}`] },
      fields: [{ name: 'apiKey', label: 'API key' }],
      apply: { headers: { 'X-Api-Key': '{apiKey}' } },
      test: { errorPath: 'error', url: `${origin}/{region}/me` },
    });
    await broker.putService({ id: 'regional', providerId: 'regional', variables: { region: 'eu' } });
    await broker.putIdentity({ serviceId: 'regional', userId: 'ann', fields: { apiKey: KEY } });
    expect(await (await broker.fetch('regional', 'ann', '/where')).json()).toEqual({ region: 'eu' });
    await broker.putService({ id: 'regional', variables: { region: 'us' } });
    expect(await (await broker.fetch('regional', 'ann', '/where')).json()).toEqual({ region: 'us' });
    await broker.deleteService('regional');
    await broker.deleteProvider('regional');
  });

  it('a refused key is passed back and marks the identity needs_reauth, with no loop', async () => {
    api.route('GET /v1/revoked', () => ({ status: 401, body: { error: 'revoked' } }));
    const before = api.requests.length;
    const response = await broker.fetch('keyed', 'ann', '/revoked');
    expect(response.status).toBe(401);
    expect(api.requests.length - before).toBe(2);
    expect((await broker.findIdentity('keyed', 'ann'))!.status).toBe('needs_reauth');
  });
});
