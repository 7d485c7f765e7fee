import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInput, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { authorizeUser, startTestBroker, type TestBroker } from '../support/broker.js';
import { startApiStandIn, type ApiStandIn } from '../support/api-standin.js';

let open: AuthServer;
let closed: AuthServer;
let mcp: ApiStandIn;
let t: TestBroker;
let broker: LocalBroker;

beforeAll(async () => {
  open = await startAuthServer({ registration: true, clients: [] });
  closed = await startAuthServer();
  mcp = await startApiStandIn();
  // A remote MCP server: its RFC 9728 metadata names the authorization server.
  mcp.route('GET /.well-known/oauth-protected-resource/mcp', () => ({
    status: 200,
    body: { resource: `${mcp.origin}/mcp`, authorization_servers: [open.issuer], bearer_methods_supported: ['header'] },
  }));
  t = await startTestBroker(closed);
  broker = t.broker;
});
afterAll(async () => {
  await t?.close();
  await mcp?.close();
  await open?.close();
  await closed?.close();
});

describe('dynamic client registration (RFC 7591)', () => {
  it('discovers the issuer, registers a client, seals its secret, and the code flow runs with it', async () => {
    const service = await broker.registerService({ serviceId: 'reg', url: open.issuer, scopes: ['openid', 'email'] });
    expect(service.clientId).toMatch(/.+/);
    expect(service.hasClientSecret).toBe(true);
    expect((await broker.getProvider('reg')).registrationUrl).toBe(`${open.issuer}/reg`);
    // The client exists at the authorization server with our redirect URI.
    const client = await open.provider.Client.find(service.clientId);
    expect(client.redirectUris).toEqual([broker.redirectUrl('reg')]);
    const done = await authorizeUser(broker, open, 'ann', { serviceId: 'reg' });
    expect(done.identity.profile.id).toBe('ann');
    expect((await broker.getIdentity('reg', 'ann'))!.accessToken).toMatch(/.+/);
  });

  it('finds the authorization server of a protected resource (RFC 9728): a remote MCP server URL is enough', async () => {
    const service = await broker.registerService({ serviceId: 'mcp', url: `${mcp.origin}/mcp` });
    expect((await broker.getProvider(service.providerId)).issuer).toBe(open.issuer);
    const done = await authorizeUser(broker, open, 'bo', { serviceId: 'mcp' });
    expect(done.identity.userId).toBe('bo');
  });

  it('says when the server offers no registration, and stores nothing', async () => {
    const error = await broker.registerService({ serviceId: 'noreg', url: closed.issuer }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInput);
    expect((error as Error).message).toContain('RFC 7591');
    expect((await broker.listProviders()).map((p) => p.id)).not.toContain('noreg');
    await expect(broker.getService('noreg')).rejects.toMatchObject({ code: 'service_not_found' });
  });
});
