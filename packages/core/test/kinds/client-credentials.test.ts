import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { STORES, startTestBroker, type TestBroker } from '../support/broker.js';

const MACHINE = {
  client_id: 'machine',
  client_secret: 'machine-secret-0123456789',
  redirect_uris: [],
  grant_types: ['client_credentials'],
};
const TTL = 2;

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({ clients: [MACHINE], accessTokenTtl: TTL });
});
afterAll(() => server?.close());

describe.each(STORES)('oauth2_client_credentials on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    t = await startTestBroker(server, { kind, refresh: { marginMs: 500 } });
    broker = t.broker;
    const discovered = await broker.getProvider('local-idp');
    await broker.putProvider({ ...discovered, id: 'local-m2m', kind: 'oauth2_client_credentials' });
    await broker.putService({ id: 'm2m', providerId: 'local-m2m', clientId: MACHINE.client_id, clientSecret: MACHINE.client_secret });
    await broker.putService({ id: 'm2m-wrong', providerId: 'local-m2m', clientId: MACHINE.client_id, clientSecret: 'not-the-secret' });
  });
  afterAll(() => t?.close());
  beforeEach(() => server.resetCounters());

  it('fetches the token on first use, once for many concurrent callers, and serves it from the store after', async () => {
    const all = await Promise.all(Array.from({ length: 8 }, () => broker.getIdentity('m2m', 'app')));
    expect(server.tokenRequests.byGrant).toEqual({ client_credentials: 1 });
    expect(new Set(all.map((i) => i!.accessToken)).size).toBe(1);
    const [first] = all;
    expect(first!.credential).toEqual({ type: 'oauth2_client_credentials', accessToken: first!.accessToken });
    expect(first!.userId).toBe('app');
    expect(first!.headers()).toEqual({ authorization: `Bearer ${first!.accessToken}` });
    // The authorization server issued it to this client.
    expect((await server.provider.ClientCredentials.find(first!.accessToken))?.clientId).toBe(MACHINE.client_id);
    expect((await broker.getIdentity('m2m', 'app'))!.accessToken).toBe(first!.accessToken);
    expect(server.tokenRequests.total).toBe(1);
  });

  it('fetches a new token before expiry through the refresher, with one grant for concurrent readers', async () => {
    const before = await broker.getIdentity('m2m', { tenantId: undefined, userId: 'app' });
    server.resetCounters();
    await new Promise((r) => setTimeout(r, TTL * 1000 - 400)); // inside the margin, not yet expired
    const renewed = await Promise.all(Array.from({ length: 5 }, () => broker.getIdentity('m2m', 'app')));
    expect(server.tokenRequests.byGrant).toEqual({ client_credentials: 1 });
    expect(renewed[0]!.accessToken).not.toBe(before!.accessToken);
    expect(new Set(renewed.map((i) => i!.accessToken)).size).toBe(1);
  });

  it('keeps one token per tenant', async () => {
    const a = await broker.getIdentity('m2m', { tenantId: 'acme' });
    const b = await broker.getIdentity('m2m', { tenantId: 'globex' });
    expect(a!.tenantId).toBe('acme');
    expect(a!.accessToken).not.toBe(b!.accessToken);
    expect(server.tokenRequests.byGrant).toEqual({ client_credentials: 2 });
  });

  it('does not make up user identities, and reports a refused client as a provider error storing nothing', async () => {
    expect(await broker.getIdentity('m2m', 'alice')).toBeUndefined();
    const error = await broker.getIdentity('m2m-wrong', 'app').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).error).toBe('invalid_client');
    expect(await broker.findIdentity('m2m-wrong', 'app')).toBeUndefined();
  });

  it('refuses a redirect flow and a put for a client-credentials service', async () => {
    await expect(broker.beginAuthorization({ serviceId: 'm2m', userId: 'x' })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(broker.putIdentity({ serviceId: 'm2m', userId: 'x', tokens: { accessToken: 'a' } })).rejects.toMatchObject({
      code: 'invalid_input',
    });
  });
});
