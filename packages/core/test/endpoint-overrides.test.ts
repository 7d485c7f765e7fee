import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, authorizeUser, redirectUriFor, startTestBroker, type TestBroker } from './support/broker.js';

let server: AuthServer;
let t: TestBroker;
beforeAll(async () => {
  server = await startAuthServer({ clients: [] });
  t = await startTestBroker(server);
});
afterAll(async () => {
  await t?.close();
  await server?.close();
});

describe('a built-in provider pointed at a staging server by endpoint overrides', () => {
  it("runs Google's flow against the overriding server: authorize, exchange, ID token checked against the overridden issuer", async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    await server.addClient({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUriFor('google-staging')] });
    await t.broker.putService({
      id: 'google-staging',
      providerId: 'google',
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      variables: {
        issuer: server.issuer,
        authorizationUrl: metadata.authorization_endpoint!,
        tokenUrl: metadata.token_endpoint!,
        userinfoUrl: metadata.userinfo_endpoint!,
      },
    });
    const started = await t.broker.beginAuthorization({ serviceId: 'google-staging', userId: 'ivy' });
    expect(new URL(started.url).origin).toBe(server.issuer);
    // Google's own parameters still go along: only the endpoints moved.
    expect(new URL(started.url).searchParams.get('access_type')).toBe('offline');

    const done = await authorizeUser(t.broker, server, 'ivy', { serviceId: 'google-staging' });
    expect(done.identity).toMatchObject({ serviceId: 'google-staging', userId: 'ivy', profile: { id: 'ivy' } });
    const fresh = await t.broker.getIdentity('google-staging', 'ivy');
    expect((await server.userinfo(fresh!.accessToken)).status).toBe(200);
  });

  it('refuses an override that is not https (or loopback http), storing nothing', async () => {
    const before = await t.broker.listServices();
    await expect(
      t.broker.putService({
        id: 'google-bad',
        providerId: 'google',
        clientId: 'c',
        variables: { tokenUrl: 'http://staging.example.com/token' },
      }),
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'variables.tokenUrl' });
    expect(await t.broker.listServices()).toEqual(before);
  });
});
