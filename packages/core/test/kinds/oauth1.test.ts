import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationFailed, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { startOAuth1StandIn, type OAuth1StandIn } from '../support/oauth1-standin.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const METHODS = [
  { method: 'HMAC-SHA1' as const, secret: 'consumer-secret-0123', consumer: { key: 'ck-hmac', secret: 'consumer-secret-0123' } },
  {
    method: 'RSA-SHA1' as const,
    secret: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    consumer: { key: 'ck-rsa', publicKey: rsa.publicKey },
  },
];

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer();
});
afterAll(() => server?.close());

describe.each(METHODS)('oauth1 with $method', ({ method, secret, consumer }) => {
  let standIn: OAuth1StandIn;
  let t: TestBroker;
  let broker: LocalBroker;

  beforeAll(async () => {
    standIn = await startOAuth1StandIn(consumer);
    t = await startTestBroker(server);
    broker = t.broker;
    const o = standIn.origin;
    await broker.putProvider({
      id: 'one',
      name: 'One',
      docs: 'https://example.test/docs',
      kind: 'oauth1',
      oauth1: {
        requestTokenUrl: `${o}/oauth/request_token`,
        authorizeUrl: `${o}/oauth/authorize`,
        accessTokenUrl: `${o}/oauth/access_token`,
        signatureMethod: method,
        authorizeParams: { name: 'EveryAuth test', expiration: 'never' },
      },
      api: { baseUrls: [o] },
      profile: { source: 'token_response', id: 'user_id', name: 'screen_name' },
    });
    await broker.putService({ id: 'one', providerId: 'one', clientId: consumer.key, clientSecret: secret });
    await broker.putService({
      id: 'wrong',
      providerId: 'one',
      clientId: consumer.key,
      clientSecret:
        method === 'HMAC-SHA1'
          ? 'not-it'
          : (generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    });
  });
  afterAll(async () => {
    await t?.close();
    await standIn?.close();
  });

  /** The user's browser at the provider: the authorize page redirects straight back to the callback. */
  async function approve(url: string): Promise<URL> {
    const response = await fetch(url, { redirect: 'manual' });
    return new URL(response.headers.get('location')!);
  }

  it('runs the three legs, stores the token credentials, and signs API requests the provider verifies', async () => {
    const started = await broker.beginAuthorization({ serviceId: 'one', userId: 'ann', finishedUrl: '/done' });
    const atProvider = new URL(started.url);
    expect(atProvider.searchParams.get('name')).toBe('EveryAuth test');
    const callback = await approve(started.url);
    expect(callback.searchParams.get('state')).toBe(started.state);
    const done = await broker.completeAuthorization('one', callback.searchParams);
    expect(done.identity.profile).toEqual({ id: '1234', name: 'ann' });
    expect(done.finishedUrl).toBe('/done?userId=ann&serviceId=one');

    const fresh = await broker.getIdentity('one', 'ann');
    expect(fresh!.accessToken).toBeUndefined();
    expect(fresh!.credential).toMatchObject({ type: 'oauth1', signatureMethod: method, consumerKey: consumer.key });
    expect(fresh!.native).toEqual({ user_id: '1234', screen_name: 'ann' });
    const response = await fetch(fresh!.authorize(new Request(`${standIn.origin}/1/members/me?fields=id,fullName`)));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: 'member-1', fields: 'id,fullName' });
    expect(() => fresh!.headers('GET')).toThrow(/pass the request URL/);
    expect(standIn.rejected).toEqual([]);
  });

  it('a provider that refuses the signature fails the start; a declining user reaches finishedUrl with access_denied', async () => {
    await expect(broker.beginAuthorization({ serviceId: 'wrong', userId: 'bob' })).rejects.toBeInstanceOf(AuthorizationFailed);
    expect(standIn.rejected).toEqual(['/oauth/request_token']);

    standIn.denyNext = true;
    const started = await broker.beginAuthorization({ serviceId: 'one', userId: 'cy', finishedUrl: '/done' });
    const error = await broker.completeAuthorization('one', (await approve(started.url)).searchParams).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorizationFailed);
    const landing = new URL((error as AuthorizationFailed).context.finishedUrl!, 'http://app.test');
    expect(landing.searchParams.get('error')).toBe('access_denied');
    expect(landing.searchParams.get('userId')).toBe('cy');
    expect(await broker.findIdentity('one', 'cy')).toBeUndefined();
  });

  it('refuses a callback whose oauth_token is not the request token of the flow', async () => {
    const started = await broker.beginAuthorization({ serviceId: 'one', userId: 'dee' });
    const callback = (await approve(started.url)).searchParams;
    callback.set('oauth_token', 'rt_someone_elses');
    await expect(broker.completeAuthorization('one', callback)).rejects.toMatchObject({ error: 'invalid_request' });
  });
});
