import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CredentialRefused, InvalidInput, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { startApiStandIn, type ApiStandIn, type RecordedRequest } from '../support/api-standin.js';

/** Verifies an RS256 JWT with node:crypto alone (not jose, which signed it): the claims, or undefined. */
function verifyJwt(jwt: string, key: KeyObject): Record<string, unknown> | undefined {
  const [header, payload, signature] = jwt.split('.');
  if (!header || !payload || !signature) return undefined;
  if (JSON.parse(Buffer.from(header, 'base64url').toString()).alg !== 'RS256') return undefined;
  const ok = verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'));
  return ok ? JSON.parse(Buffer.from(payload, 'base64url').toString()) : undefined;
}

const google = generateKeyPairSync('rsa', { modulusLength: 2048 });
const github = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const CLIENT_EMAIL = 'robot@project.iam.gserviceaccount.com';
const APP_ID = '424242';

let server: AuthServer;
let api: ApiStandIn;
let t: TestBroker;
let broker: LocalBroker;
let googleExpiresIn = 3599;

const serviceAccount = (key: KeyObject, tokenUri: string) =>
  JSON.stringify({
    type: 'service_account',
    project_id: 'project',
    private_key_id: 'kid-1',
    private_key: key.export({ type: 'pkcs8', format: 'pem' }),
    client_email: CLIENT_EMAIL,
    token_uri: tokenUri,
  });

/** Google's token endpoint for the JWT bearer grant, as documented for service accounts. */
function googleToken(req: RecordedRequest) {
  const form = new URLSearchParams(req.body);
  const claims =
    form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer'
      ? verifyJwt(form.get('assertion') ?? '', google.publicKey)
      : undefined;
  const now = Math.floor(Date.now() / 1000);
  const valid =
    claims &&
    claims.iss === CLIENT_EMAIL &&
    claims.aud === `${api.origin}/token` &&
    typeof claims.exp === 'number' &&
    typeof claims.iat === 'number' &&
    claims.exp - claims.iat <= 3600 &&
    claims.exp > now;
  if (!valid) return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
  return {
    status: 200,
    body: {
      access_token: `ya29.${randomBytes(12).toString('hex')}`,
      expires_in: googleExpiresIn,
      token_type: 'Bearer',
      scope_seen: claims.scope,
      sub_seen: claims.sub,
    },
  };
}

/** GitHub's installation token endpoint. */
function githubToken(req: RecordedRequest) {
  const jwt = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  const claims = verifyJwt(jwt, github.publicKey);
  if (!claims || claims.iss !== APP_ID || (claims.exp as number) - (claims.iat as number) > 660) {
    return { status: 401, body: { message: 'A JSON web token could not be decoded', documentation_url: 'https://docs.github.com/rest' } };
  }
  if (!req.url.pathname.startsWith('/app/installations/77/')) return { status: 404, body: { message: 'Not Found' } };
  const expiresAt = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    status: 201,
    body: {
      token: `ghs_${randomBytes(12).toString('hex')}`,
      expires_at: expiresAt,
      permissions: { issues: 'write' },
      repository_selection: 'all',
    },
  };
}

beforeAll(async () => {
  server = await startAuthServer();
  api = await startApiStandIn();
  api.route('POST /token', googleToken);
  api.route('POST /app/installations/77/access_tokens', githubToken);
  api.route('POST /app/installations/78/access_tokens', githubToken);
  t = await startTestBroker(server, { refresh: { marginMs: 1000 } });
  broker = t.broker;
  const gsa = await broker.getProvider('google-service-account');
  await broker.putProvider({ ...gsa, id: 'gsa-local', tokenUrl: `${api.origin}/token`, api: { baseUrls: [api.origin] } });
  const gha = await broker.getProvider('github-app');
  await broker.putProvider({
    ...gha,
    id: 'gha-local',
    api: { baseUrls: [api.origin] },
    jwt: { ...gha.jwt!, installationTokenUrl: `${api.origin}/app/installations/{installationId}/access_tokens` },
  });
  await broker.putService({ id: 'gsa', providerId: 'gsa-local', scopes: ['https://www.googleapis.com/auth/calendar'] });
  await broker.putService({ id: 'gha', providerId: 'gha-local' });
});
afterAll(async () => {
  await t?.close();
  await api?.close();
  await server?.close();
});
beforeEach(() => {
  api.requests.length = 0;
});

describe('jwt: Google service account (RFC 7523)', () => {
  it('signs the assertion, gets a token, impersonates the subject, and repeats the grant before expiry', async () => {
    googleExpiresIn = 2;
    const summary = await broker.putIdentity({
      serviceId: 'gsa',
      userId: 'ann',
      fields: { serviceAccount: serviceAccount(google.privateKey, `${api.origin}/token`), subject: 'ann@corp.test' },
    });
    expect(summary.profile).toEqual({ id: CLIENT_EMAIL });
    const first = await broker.getIdentity('gsa', 'ann');
    expect(first!.credential).toEqual({ type: 'jwt', accessToken: first!.accessToken });
    expect(first!.native).toMatchObject({ scope_seen: 'https://www.googleapis.com/auth/calendar', sub_seen: 'ann@corp.test' });
    googleExpiresIn = 3599;
    await new Promise((r) => setTimeout(r, 1200)); // within the margin: half the 2 s life
    const renewed = await Promise.all([broker.getIdentity('gsa', 'ann'), broker.getIdentity('gsa', 'ann')]);
    expect(renewed[0]!.accessToken).not.toBe(first!.accessToken);
    expect(renewed[1]!.accessToken).toBe(renewed[0]!.accessToken);
    expect(api.requests.filter((r) => r.url.pathname === '/token')).toHaveLength(2);
  });

  it('refuses a key the provider does not accept, and a key file naming another token URL, storing nothing', async () => {
    const refused = await broker
      .putIdentity({
        serviceId: 'gsa',
        userId: 'bob',
        fields: { serviceAccount: serviceAccount(otherKey.privateKey, `${api.origin}/token`) },
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CredentialRefused);
    expect((refused as Error).message).toContain('Invalid JWT Signature');
    const elsewhere = await broker
      .putIdentity({
        serviceId: 'gsa',
        userId: 'bob',
        fields: { serviceAccount: serviceAccount(google.privateKey, 'https://attacker.example/token') },
      })
      .catch((e: unknown) => e);
    expect(elsewhere).toBeInstanceOf(InvalidInput);
    expect(api.requests.filter((r) => r.url.pathname === '/token')).toHaveLength(1);
    await expect(
      broker.putIdentity({ serviceId: 'gsa', userId: 'bob', fields: { serviceAccount: '{"type":"user"}' } }),
    ).rejects.toMatchObject({
      field: 'fields.serviceAccount',
    });
    expect(await broker.findIdentity('gsa', 'bob')).toBeUndefined();
  });
});

describe('jwt: GitHub App installation', () => {
  it('buys an installation token with an app JWT from a PKCS#1 key', async () => {
    const privateKey = github.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    await broker.putIdentity({ serviceId: 'gha', userId: 'acme', fields: { appId: APP_ID, privateKey, installationId: '77' } });
    const fresh = await broker.getIdentity('gha', 'acme');
    expect(fresh!.accessToken).toMatch(/^ghs_/);
    expect(fresh!.headers()).toEqual({ authorization: `Bearer ${fresh!.accessToken}` });
    expect(Date.parse(fresh!.expiresAt!)).toBeGreaterThan(Date.now() + 3500_000);
    expect(fresh!.native).toMatchObject({ repository_selection: 'all' });
    expect(JSON.stringify(fresh!.native)).not.toContain(fresh!.accessToken!);
  });

  it('refuses an unknown installation and a wrong key', async () => {
    const privateKey = github.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(
      broker.putIdentity({ serviceId: 'gha', userId: 'x', fields: { appId: APP_ID, privateKey, installationId: '78' } }),
    ).rejects.toBeInstanceOf(CredentialRefused);
    const wrong = otherKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(
      broker.putIdentity({ serviceId: 'gha', userId: 'x', fields: { appId: APP_ID, privateKey: wrong, installationId: '77' } }),
    ).rejects.toMatchObject({ code: 'credential_refused' });
    expect(await broker.findIdentity('gha', 'x')).toBeUndefined();
  });
});
