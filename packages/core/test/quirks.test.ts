import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthorizationFailed,
  LocalBroker,
  ReauthorizationRequired,
  Vault,
  createKeyRing,
  openSqliteStore,
  parseProvider,
  type Provider,
  type ProviderInput,
} from '@everyauth/core';
import {
  basicCredentials,
  json,
  s256,
  startShapeProvider,
  type Handler,
  type SeenRequest,
  type ShapeProvider,
} from './support/shape-provider.js';

/**
 * Each quirk class the catalog can describe, run through the real LocalBroker against a local
 * provider that answers in that shape. The providers are the built-in catalog entries with only
 * their URLs moved to 127.0.0.1, so a quirk setting that is wrong in the catalog fails here.
 */

const BASE_URL = 'http://127.0.0.1:3999';
const CLIENT_ID = 'quirk-client';
/** Characters RFC 6749 §2.3.1 says must be form-url-encoded before Basic's base64. */
const CLIENT_SECRET = 'se:cr+et/ é%=';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

let shape: ShapeProvider;
let broker: LocalBroker;
let dir: string;
let now = Date.now();

beforeAll(async () => {
  shape = await startShapeProvider();
  dir = mkdtempSync(join(tmpdir(), 'everyauth-quirks-'));
  const store = await openSqliteStore({ path: join(dir, 'everyauth.db') });
  broker = new LocalBroker({
    baseUrl: BASE_URL,
    store,
    vault: Vault.fromKeyRing(createKeyRing()),
    now: () => now,
    refresh: { attempts: 1 },
  });
});
afterAll(async () => {
  await broker?.close();
  await shape?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- set-up: a catalog entry moved to the local provider ----

const URL_FIELDS = ['issuer', 'authorizationUrl', 'tokenUrl', 'refreshUrl', 'revocationUrl', 'userinfoUrl'] as const;

interface Mirrored {
  serviceId: string;
  provider: Provider;
  /** The local paths of the provider's endpoints. */
  paths: { token: string; refresh?: string; userinfo?: string; profile?: string };
}

/**
 * Registers catalog entry `catalogId` as custom provider `${catalogId}-${suffix}` with every URL
 * moved to the local provider (same path, under a prefix of its own), and a service of the same id.
 */
async function mirror(
  catalogId: string,
  suffix: string,
  service: { scopes?: string[]; params?: Record<string, string> } = {},
): Promise<Mirrored> {
  const entry = JSON.parse(readFileSync(new URL(`../catalog/${catalogId}.json`, import.meta.url), 'utf8')) as ProviderInput &
    Record<string, unknown>;
  const id = `${catalogId}-${suffix}`;
  // A self-hosted origin ({baseUrl}) takes its default (gitlab.com), whose path the mirror keeps.
  const defaults = Object.fromEntries(Object.entries(entry.variables ?? {}).flatMap(([k, v]) => (v.default ? [[k, v.default]] : [])));
  const expand = (url: string) => url.replace(/\{(\w+)\}/g, (m, name: string) => defaults[name] ?? m);
  const local = (url: string) => `${shape.origin}/${id}${new URL(expand(url)).pathname.replace(/\/$/, '')}`;
  const variables = Object.fromEntries(Object.entries(entry.variables ?? {}).filter(([k]) => !(k in defaults)));
  const input: Record<string, unknown> = { ...entry, id, variables };
  for (const field of URL_FIELDS) if (typeof entry[field] === 'string') input[field] = local(entry[field]);
  if (entry.profile?.url) input.profile = { ...entry.profile, url: local(entry.profile.url) };
  // The API hosts keep their real names; only the variables with defaults are filled in.
  if (entry.api?.baseUrls) input.api = { ...entry.api, baseUrls: entry.api.baseUrls.map(expand) };
  const provider = await broker.putProvider(parseProvider(input, `mirror of ${catalogId}`));
  await broker.putService({ id, providerId: id, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...service });
  const path = (url: string | undefined) => (url === undefined ? undefined : new URL(url).pathname);
  // Google sends `iss` in the authorization response without advertising it (google.json's notes).
  const sendsIss = provider.authorizationResponseIss || catalogId === 'google';
  shape.authorizeAt(path(provider.authorizationUrl)!, { iss: sendsIss ? provider.issuer : undefined });
  return {
    serviceId: id,
    provider,
    paths: {
      token: path(provider.tokenUrl)!,
      refresh: path(provider.refreshUrl),
      userinfo: path(provider.userinfoUrl),
      profile: path(provider.profile?.url),
    },
  };
}

async function begin(serviceId: string, userId: string): Promise<URL> {
  return new URL((await broker.beginAuthorization({ serviceId, userId })).url);
}

/** Begins, lets the local provider redirect back, and completes at the broker. */
async function authorize(serviceId: string, userId: string) {
  const url = await begin(serviceId, userId);
  const callback = await shape.authorize(url.href);
  return { url, done: await broker.completeAuthorization(serviceId, callback.searchParams) };
}

async function expectNothingStored(serviceId: string) {
  expect((await broker.listIdentities(serviceId)).items).toEqual([]);
}

/** RFC 6749 §2.3.1: client_secret_post puts both credentials in the body and no Authorization header. */
function expectClientSecretPost(request: SeenRequest) {
  expect(request.headers.authorization).toBeUndefined();
  expect(request.form.get('client_id')).toBe(CLIENT_ID);
  expect(request.form.get('client_secret')).toBe(CLIENT_SECRET);
}

/** RFC 6749 §2.3.1: client_secret_basic sends the credentials in the header only, never the secret in the body. */
function expectClientSecretBasic(request: SeenRequest) {
  expect(basicCredentials(request.headers.authorization)).toEqual({ id: CLIENT_ID, secret: CLIENT_SECRET });
  expect(request.form.has('client_secret')).toBe(false);
}

/** Every key at any depth of a JSON value. */
function keysDeep(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysDeep);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...keysDeep(v)]);
  return [];
}

/** A token endpoint answering the code exchange and refreshes differently; refresh answers are numbered from 1. */
function grants(
  code: Handler,
  refresh: (n: number, request: SeenRequest) => ReturnType<Handler> = () => json({ error: 'invalid_grant' }, 400),
): Handler {
  let refreshes = 0;
  return (request) => (request.form.get('grant_type') === 'refresh_token' ? refresh(++refreshes, request) : code(request));
}

function idTokenFor(p: Mirrored, request: SeenRequest, claims: Record<string, unknown>): string {
  const issued = shape.issued(request.form.get('code')!);
  const iat = Math.floor(Date.now() / 1000);
  return shape.idToken({
    iss: p.provider.issuer,
    aud: CLIENT_ID,
    iat,
    exp: iat + 600,
    nonce: issued?.query.get('nonce') ?? undefined,
    ...claims,
  });
}

// ---- the quirk classes ----

describe('nested token (Slack: authed_user), comma scopes in user_scope, client_secret_post', () => {
  let slack: Mirrored;
  const slackResponse = {
    ok: true,
    app_id: 'A0KRD7HC3',
    authed_user: {
      id: 'U1234',
      scope: 'users:read,channels:history',
      access_token: 'xoxp-user-token',
      token_type: 'user',
      refresh_token: 'xoxe-1-refresh',
    },
    team: { id: 'T9TK3CUKW', name: 'Slack Softball Team' },
    enterprise: null,
    is_enterprise_install: false,
  };
  beforeAll(async () => {
    slack = await mirror('slack', 'shape', { scopes: ['users:read', 'channels:history'] });
  });

  it('asks for the user scopes comma-separated in user_scope, and reads the user token under authed_user', async () => {
    shape.on(slack.paths.token, () => json(slackResponse));
    const { url, done } = await authorize(slack.serviceId, 'alice');

    expect(url.searchParams.get('user_scope')).toBe('users:read,channels:history');
    expect(url.searchParams.has('scope')).toBe(false);
    const [exchange] = shape.seen(slack.paths.token);
    expect(exchange!.method).toBe('POST');
    expect(exchange!.form.get('grant_type')).toBe('authorization_code');
    expect(exchange!.form.get('code_verifier')).toBeTruthy();
    expect(s256(exchange!.form.get('code_verifier')!)).toBe(url.searchParams.get('code_challenge'));
    expectClientSecretPost(exchange!);

    expect(done.identity.profile).toEqual({ id: 'U1234' });
    const fresh = await broker.getIdentity(slack.serviceId, 'alice');
    expect(fresh!.accessToken).toBe('xoxp-user-token');
    expect(fresh!.native).toMatchObject({
      ok: true,
      team: { id: 'T9TK3CUKW' },
      authed_user: { id: 'U1234', access_token: 'xoxp-user-token' },
    });
    expect(keysDeep(fresh!.native)).not.toContain('refresh_token');
    expect(JSON.stringify(fresh!.native)).not.toContain('xoxe-1-refresh');
  });

  it('the bot variant reads the top-level bot token (token_type "bot") and the workspace as the profile', async () => {
    const bot = await mirror('slack-bot', 'shape');
    shape.on(bot.paths.token, () =>
      json({
        ok: true,
        access_token: 'xoxb-bot-token',
        token_type: 'bot',
        scope: 'chat:write',
        bot_user_id: 'U0KRQLJ9H',
        app_id: 'A0KRD7HC3',
        team: { id: 'T9TK3CUKW', name: 'Slack Softball Team' },
        enterprise: null,
        authed_user: { id: 'U1234' },
      }),
    );
    const { url, done } = await authorize(bot.serviceId, 'alice');
    expect(url.searchParams.get('scope')).toBe('chat:write');
    expect(done.identity.profile).toEqual({ id: 'T9TK3CUKW', name: 'Slack Softball Team' });
    const fresh = await broker.getIdentity(bot.serviceId, 'alice');
    expect(fresh!.accessToken).toBe('xoxb-bot-token');
    expect(fresh!.native).toMatchObject({ bot_user_id: 'U0KRQLJ9H', authed_user: { id: 'U1234' } });
  });

  it("an `ok: false` error sent with HTTP 200 fails the authorization with the provider's error, storing nothing", async () => {
    const failing = await mirror('slack', 'fail');
    shape.on(failing.paths.token, () => json({ ok: false, error: 'invalid_code' }));
    const failure = await authorize(failing.serviceId, 'bob').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(AuthorizationFailed);
    expect(failure).toMatchObject({ error: 'invalid_code' });
    expect(shape.seen(failing.paths.token)).toHaveLength(1);
    await expectNothingStored(failing.serviceId);
  });
});

describe('no expiry, no refresh token, no token_type (Stack Exchange with no_expiry)', () => {
  let se: Mirrored;
  beforeAll(async () => {
    se = await mirror('stackexchange', 'shape');
    // The /json token endpoint wraps access_token (and expires, without no_expiry) in JSON; nothing else.
    shape.on(se.paths.token, () => json({ access_token: 'se-access-token-(never-expires)' }));
  });

  it('asks for no_expiry, posts the client secret, and keeps the token for good without a refresh', async () => {
    const { url } = await authorize(se.serviceId, 'dana');
    expect(url.searchParams.get('scope')).toBe('no_expiry');
    expectClientSecretPost(shape.seen(se.paths.token)[0]!);
    const fresh = await broker.getIdentity(se.serviceId, 'dana');
    expect(fresh).toMatchObject({ accessToken: 'se-access-token-(never-expires)', expiresAt: undefined });
    const before = shape.seen(se.paths.token).length;
    now += 400 * DAY;
    expect((await broker.getIdentity(se.serviceId, 'dana'))!.accessToken).toBe(fresh!.accessToken);
    // Forcing a refresh with no refresh token is refused, saying why, instead of reporting the old token as new.
    await expect(broker.getIdentity(se.serviceId, 'dana', { force: true })).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/has no refresh token .* its access token does not expire/),
    });
    expect(shape.seen(se.paths.token)).toHaveLength(before);
  });
});

describe('no expiry, profile from a second endpoint (GitHub OAuth app)', () => {
  let github: Mirrored;
  beforeAll(async () => {
    github = await mirror('github', 'shape');
    shape.on(github.paths.token, () =>
      json({ access_token: 'gho_16C7e42F292c6912E7710c838347Ae178B4a', token_type: 'bearer', scope: 'read:user,user:email' }),
    );
    shape.on(github.paths.profile!, () => json({ login: 'octocat', id: 583231, name: 'The Octocat', email: null }));
  });

  it('asks for space-separated scopes, asks for JSON, and reads the profile from GET /user with the token', async () => {
    const { url, done } = await authorize(github.serviceId, 'carol');
    expect(url.searchParams.get('scope')).toBe('read:user user:email');

    const [exchange] = shape.seen(github.paths.token);
    // GitHub answers form-encoded unless asked for JSON.
    expect(exchange!.headers.accept).toContain('application/json');
    expectClientSecretPost(exchange!);

    const [profileRequest] = shape.seen(github.paths.profile!);
    expect(profileRequest!.method).toBe('GET');
    expect(profileRequest!.headers.authorization).toBe('Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a');
    expect(done.identity.profile).toEqual({ id: '583231', name: 'octocat' });
  });

  it('a token without expires_in never expires: no expiry, and no token request ever again', async () => {
    const fresh = await broker.getIdentity(github.serviceId, 'carol');
    expect(fresh!.expiresAt).toBeUndefined();
    expect((await broker.findIdentity(github.serviceId, 'carol'))!.expiresAt).toBeUndefined();
    const before = shape.seen(github.paths.token).length;
    now += 400 * DAY;
    for (let i = 0; i < 3; i++) expect((await broker.getIdentity(github.serviceId, 'carol'))!.accessToken).toBe(fresh!.accessToken);
    expect(shape.seen(github.paths.token)).toHaveLength(before);
  });

  it.each([
    ['HTTP 401', { status: 401, body: { message: 'Bad credentials' } }, 'temporarily_unavailable'],
    ['a body that is not JSON', { raw: '<html>oops</html>', contentType: 'text/html' }, 'invalid_response'],
  ])(
    'a profile endpoint answering %s after a good token response fails the authorization, storing nothing',
    async (_name, answer, error) => {
      const broken = await mirror('github', `profile-${error.replace(/_/g, '-')}`);
      shape.on(broken.paths.token, () => json({ access_token: 'gho_good', token_type: 'bearer', scope: '' }));
      shape.on(broken.paths.profile!, () => answer);
      await expect(authorize(broken.serviceId, 'dave')).rejects.toMatchObject({ name: 'AuthorizationFailed', error });
      expect(shape.seen(broken.paths.token)).toHaveLength(1);
      expect(shape.seen(broken.paths.profile!)).toHaveLength(1);
      await expectNothingStored(broken.serviceId);
    },
  );
});

describe('no refresh token (LinkedIn: 60-day tokens, re-authorize after)', () => {
  let linkedin: Mirrored;
  beforeAll(async () => {
    linkedin = await mirror('linkedin', 'shape');
    shape.on(linkedin.paths.token, (request) =>
      json({
        access_token: 'AQV-linkedin',
        expires_in: 60 * 24 * 3600,
        scope: 'email,openid,profile',
        token_type: 'Bearer',
        id_token: idTokenFor(linkedin, request, { sub: 'li-782bbtaQ', name: 'Erin Example', email: 'erin@example.test' }),
      }),
    );
  });

  it('serves the token until it expires, then raises ReauthorizationRequired and marks needs_reauth, never calling the token endpoint', async () => {
    const { url, done } = await authorize(linkedin.serviceId, 'erin');
    expect(url.searchParams.has('code_challenge')).toBe(false); // pkce: false
    expect(shape.seen(linkedin.paths.token)[0]!.form.has('code_verifier')).toBe(false);
    expect(done.identity.profile).toEqual({ id: 'li-782bbtaQ', name: 'Erin Example', email: 'erin@example.test' });
    const first = await broker.getIdentity(linkedin.serviceId, 'erin');
    expect(Date.parse(first!.expiresAt!)).toBe(now + 60 * DAY);

    // Inside the refresh margin but not expired: the token still works, so it is served.
    now += 60 * DAY - 60_000;
    expect((await broker.getIdentity(linkedin.serviceId, 'erin'))!.accessToken).toBe('AQV-linkedin');
    expect((await broker.findIdentity(linkedin.serviceId, 'erin'))!.status).toBe('active');

    now += 120_000;
    await expect(broker.getIdentity(linkedin.serviceId, 'erin')).rejects.toBeInstanceOf(ReauthorizationRequired);
    expect((await broker.findIdentity(linkedin.serviceId, 'erin'))!.status).toBe('needs_reauth');
    expect((await broker.listEvents({ identityId: done.identity.id })).map((e) => e.type)).toContain('identity.needs_reauth');
    await expect(broker.getIdentity(linkedin.serviceId, 'erin')).rejects.toMatchObject({ code: 'reauthorization_required' });
    expect(shape.seen(linkedin.paths.token)).toHaveLength(1);
  });
});

describe('rotating refresh tokens (X) and client_secret_basic', () => {
  let x: Mirrored;
  beforeAll(async () => {
    x = await mirror('x', 'shape');
    shape.on(
      x.paths.token,
      grants(
        () =>
          json({
            token_type: 'bearer',
            expires_in: 7200,
            access_token: 'x-a0',
            scope: 'tweet.read users.read offline.access',
            refresh_token: 'x-r0',
          }),
        (n) =>
          json({
            token_type: 'bearer',
            expires_in: 7200,
            access_token: `x-a${n}`,
            scope: 'tweet.read users.read offline.access',
            refresh_token: `x-r${n}`,
          }),
      ),
    );
    shape.on(x.paths.profile!, () => json({ data: { id: '2244994945', name: 'X Dev', username: 'XDevelopers' } }));
  });

  it('stores each new refresh token with its access token and uses it next time; every request authenticates with Basic only', async () => {
    const { done } = await authorize(x.serviceId, 'frank');
    expect(done.identity.profile).toEqual({ id: '2244994945', name: 'XDevelopers' });
    now += 2 * HOUR;
    expect((await broker.getIdentity(x.serviceId, 'frank'))!.accessToken).toBe('x-a1');
    now += 2 * HOUR;
    const fresh = await broker.getIdentity(x.serviceId, 'frank');
    expect(fresh!.accessToken).toBe('x-a2');
    expect(keysDeep(fresh!.native)).not.toContain('refresh_token');

    const requests = shape.seen(x.paths.token);
    expect(requests.map((r) => r.form.get('grant_type'))).toEqual(['authorization_code', 'refresh_token', 'refresh_token']);
    expect(requests.slice(1).map((r) => r.form.get('refresh_token'))).toEqual(['x-r0', 'x-r1']);
    for (const request of requests) expectClientSecretBasic(request);
  });
});

describe('non-rotating refresh tokens, extra token fields and profile in the token response (Asana)', () => {
  let asana: Mirrored;
  const user = { gid: '4673218951', name: 'Greg Sanchez', email: 'gsanchez@example.com' };
  beforeAll(async () => {
    asana = await mirror('asana', 'shape');
    shape.on(
      asana.paths.token,
      grants(
        () =>
          json({
            access_token: 'asana-a0',
            expires_in: 3600,
            token_type: 'bearer',
            refresh_token: 'asana-r0',
            data: { id: 4673218951, ...user },
          }),
        // Asana answers a refresh without a refresh_token: the old one stays valid.
        (n) => json({ access_token: `asana-a${n}`, expires_in: 3600, token_type: 'bearer', data: { id: 4673218951, ...user } }),
      ),
    );
  });

  it('keeps the data user object in native and reads the profile from it', async () => {
    const { done } = await authorize(asana.serviceId, 'greg');
    expect(done.identity.profile).toEqual({ id: user.gid, name: user.name, email: user.email });
    const fresh = await broker.getIdentity(asana.serviceId, 'greg');
    expect(fresh!.native).toMatchObject({ data: user, token_type: 'bearer' });
    expect(fresh!.native).not.toHaveProperty('refresh_token');
  });

  it('keeps the old refresh token when the refresh response has none, and authenticates in the body only', async () => {
    now += HOUR;
    expect((await broker.getIdentity(asana.serviceId, 'greg'))!.accessToken).toBe('asana-a1');
    now += HOUR;
    expect((await broker.getIdentity(asana.serviceId, 'greg'))!.accessToken).toBe('asana-a2');
    const refreshes = shape.seen(asana.paths.token).filter((r) => r.form.get('grant_type') === 'refresh_token');
    expect(refreshes.map((r) => r.form.get('refresh_token'))).toEqual(['asana-r0', 'asana-r0']);
    for (const request of shape.seen(asana.paths.token)) expectClientSecretPost(request);
  });
});

describe('extra token fields kept in native, profile from userinfo (Salesforce)', () => {
  it('keeps instance_url, id, signature and issued_at; no expires_in means no expiry', async () => {
    const salesforce = await mirror('salesforce', 'shape');
    const token = {
      access_token: '00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMeYMN7cj8EoWr78nt1u44zU31IbYNNJguseu',
      refresh_token: '5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7Xg4KQ2Fw2V0Pt2bw9YIIg',
      signature: 'CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=',
      scope: 'refresh_token api',
      instance_url: 'https://yourInstance.salesforce.com',
      id: 'https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS',
      token_type: 'Bearer',
      issued_at: '1278448832702',
    };
    shape.on(salesforce.paths.token, () => json(token));
    shape.on(salesforce.paths.userinfo!, () =>
      json({
        sub: token.id,
        user_id: '005xx000001SwiUAAS',
        organization_id: '00Dxx0000001gPLEAY',
        name: 'Hal Salesforce',
        email: 'hal@example.test',
      }),
    );

    const { done } = await authorize(salesforce.serviceId, 'hal');
    expectClientSecretPost(shape.seen(salesforce.paths.token)[0]!);
    expect(shape.seen(salesforce.paths.userinfo!)[0]!.headers.authorization).toBe(`Bearer ${token.access_token}`);
    expect(done.identity.profile).toEqual({ id: '005xx000001SwiUAAS', name: 'Hal Salesforce', email: 'hal@example.test' });
    expect(done.identity.scope).toBe('refresh_token api');

    const fresh = await broker.getIdentity(salesforce.serviceId, 'hal');
    expect(fresh!.accessToken).toBe(token.access_token);
    expect(fresh!.expiresAt).toBeUndefined();
    const { refresh_token: _kept, ...rest } = token;
    expect(fresh!.native).toEqual(rest);
  });
});

describe('a separate refresh endpoint and no PKCE (Figma)', () => {
  it('exchanges the code at tokenUrl without a verifier and refreshes at refreshUrl, with Basic auth', async () => {
    const figma = await mirror('figma', 'shape');
    expect(figma.paths.refresh).not.toBe(figma.paths.token);
    shape.on(figma.paths.token, () =>
      json({ user_id_string: '1234', access_token: 'figd-a0', token_type: 'bearer', expires_in: 90 * 24 * 3600, refresh_token: 'figd-r0' }),
    );
    shape.on(figma.paths.refresh!, () => json({ access_token: 'figd-a1', token_type: 'bearer', expires_in: 90 * 24 * 3600 }));
    shape.on(figma.paths.profile!, () =>
      json({ id: '1234', handle: 'ivy', email: 'ivy@example.test', img_url: 'https://example.test/i.png' }),
    );

    const { url, done } = await authorize(figma.serviceId, 'ivy');
    expect(url.searchParams.has('code_challenge')).toBe(false);
    expect(done.identity.profile).toEqual({ id: '1234', name: 'ivy', email: 'ivy@example.test' });
    now += 90 * DAY;
    expect((await broker.getIdentity(figma.serviceId, 'ivy'))!.accessToken).toBe('figd-a1');

    const [exchange, ...moreExchanges] = shape.seen(figma.paths.token);
    expect(moreExchanges).toEqual([]);
    expect(exchange!.form.get('grant_type')).toBe('authorization_code');
    expect(exchange!.form.has('code_verifier')).toBe(false);
    const refreshes = shape.seen(figma.paths.refresh!);
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]!.form.get('grant_type')).toBe('refresh_token');
    expect(refreshes[0]!.form.get('refresh_token')).toBe('figd-r0');
    for (const request of [exchange!, refreshes[0]!]) expectClientSecretBasic(request);
  });
});

describe('authorization parameters and an ID token profile (Google)', () => {
  it('sends access_type=offline and prompt=consent, a nonce for openid, and reads the profile from the ID token', async () => {
    const google = await mirror('google', 'shape');
    shape.on(google.paths.token, (request) =>
      json({
        access_token: 'ya29.a0-google',
        expires_in: 3599,
        refresh_token: '1//0g-google',
        scope: 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile',
        token_type: 'Bearer',
        id_token: idTokenFor(google, request, {
          sub: '110169484474386276334',
          email: 'judy@example.test',
          email_verified: true,
          name: 'Judy Example',
        }),
      }),
    );
    const { url, done } = await authorize(google.serviceId, 'judy');
    expect(url.searchParams.get('access_type')).toBe('offline');
    expect(url.searchParams.get('prompt')).toBe('consent');
    expect(url.searchParams.get('scope')).toBe('openid email profile');
    expect(url.searchParams.get('nonce')).toBeTruthy();
    expect(done.identity.profile).toEqual({ id: '110169484474386276334', name: 'Judy Example', email: 'judy@example.test' });
    expect((await broker.getIdentity(google.serviceId, 'judy'))!.native).not.toHaveProperty('refresh_token');
  });

  it("a service's own parameters override the catalog's", async () => {
    const google = await mirror('google', 'params', { params: { prompt: 'select_account', login_hint: 'judy@example.test' } });
    const url = await begin(google.serviceId, 'judy');
    expect(url.searchParams.get('access_type')).toBe('offline');
    expect(url.searchParams.get('prompt')).toBe('select_account');
    expect(url.searchParams.get('login_hint')).toBe('judy@example.test');
  });
});

describe('a JSON token request body (Square ObtainToken)', () => {
  it('sends the code exchange and the refresh as a JSON object with the client credentials in it', async () => {
    const square = await mirror('square', 'shape');
    // The grant type is in the JSON body, where `grants` (which reads the form) cannot see it.
    const byJsonGrant =
      (code: Handler, refresh: Handler): Handler =>
      (request) =>
        (JSON.parse(request.text || '{}') as { grant_type?: string }).grant_type === 'refresh_token' ? refresh(request) : code(request);
    shape.on(
      square.paths.token,
      byJsonGrant(
        () =>
          json({
            access_token: 'EAAA-a0',
            token_type: 'bearer',
            expires_at: '2026-12-25T00:00:00Z',
            merchant_id: 'ML1',
            refresh_token: 'EQAA-r0',
            expires_in: 30 * 24 * 3600,
          }),
        () =>
          json({ access_token: 'EAAA-a1', token_type: 'bearer', merchant_id: 'ML1', refresh_token: 'EQAA-r0', expires_in: 30 * 24 * 3600 }),
      ),
    );
    const { done } = await authorize(square.serviceId, 'kim');
    expect(done.identity.profile).toEqual({ id: 'ML1' });
    now += 31 * DAY;
    expect((await broker.getIdentity(square.serviceId, 'kim'))!.accessToken).toBe('EAAA-a1');

    const requests = shape.seen(square.paths.token);
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers.authorization).toBeUndefined();
    }
    const [exchange, refresh] = requests.map((r) => JSON.parse(r.text) as Record<string, string>);
    expect(exchange).toMatchObject({ grant_type: 'authorization_code', client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
    expect(exchange!.code).toBeTruthy();
    expect(exchange!.code_verifier).toBeTruthy();
    expect(refresh).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: 'EQAA-r0',
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
    });
  });
});

describe('a non-Bearer authorization scheme (Mailchimp: OAuth, Zoho: Zoho-oauthtoken)', () => {
  it('reads the Mailchimp profile with "Authorization: OAuth" and hands out the same header for API calls', async () => {
    const mailchimp = await mirror('mailchimp', 'shape');
    shape.on(mailchimp.paths.token, () => json({ access_token: 'mc-token-1', expires_in: 0, scope: null }));
    shape.on(mailchimp.paths.profile!, (request) =>
      request.headers.authorization === 'OAuth mc-token-1'
        ? json({
            dc: 'us19',
            accountname: 'Lee Co',
            user_id: 42,
            login: { login_email: 'lee@example.test' },
            api_endpoint: 'https://us19.api.mailchimp.com',
          })
        : json({ error: 'invalid_token' }, 401),
    );
    const { done } = await authorize(mailchimp.serviceId, 'lee');
    expect(done.identity.profile).toEqual({ id: '42', name: 'Lee Co', email: 'lee@example.test' });
    const fresh = await broker.getIdentity(mailchimp.serviceId, 'lee');
    expect(fresh!.accessToken).toBe('mc-token-1');
    expect(fresh!.expiresAt).toBeUndefined();
    expect(fresh!.headers()).toEqual({ authorization: 'OAuth mc-token-1' });
  });

  it('an imported Mailchimp token gets the same scheme, on the profile request and on API calls', async () => {
    const mailchimp = await mirror('mailchimp', 'import');
    shape.on(mailchimp.paths.profile!, (request) =>
      request.headers.authorization === 'OAuth mc-imported'
        ? json({ dc: 'us2', accountname: 'Imported Co', user_id: 7, login: { login_email: 'imp@example.test' } })
        : json({ error: 'invalid_token' }, 401),
    );
    const summary = await broker.putIdentity({ serviceId: mailchimp.serviceId, userId: 'imp', tokens: { accessToken: 'mc-imported' } });
    expect(summary.profile).toEqual({ id: '7', name: 'Imported Co', email: 'imp@example.test' });
    expect((await broker.getIdentity(mailchimp.serviceId, 'imp'))!.headers()).toEqual({ authorization: 'OAuth mc-imported' });
  });

  it('applies "Zoho-oauthtoken" to requests, also after a refresh', async () => {
    const zoho = await mirror('zoho', 'shape');
    shape.on(
      zoho.paths.token,
      grants(
        () =>
          json({
            access_token: '1000.zoho-a0',
            refresh_token: '1000.zoho-r0',
            api_domain: 'https://www.zohoapis.com',
            token_type: 'Bearer',
            expires_in: 3600,
          }),
        () => json({ access_token: '1000.zoho-a1', api_domain: 'https://www.zohoapis.com', token_type: 'Bearer', expires_in: 3600 }),
      ),
    );
    await authorize(zoho.serviceId, 'mo');
    expect((await broker.getIdentity(zoho.serviceId, 'mo'))!.headers()).toEqual({ authorization: 'Zoho-oauthtoken 1000.zoho-a0' });
    now += 2 * HOUR;
    const fresh = await broker.getIdentity(zoho.serviceId, 'mo');
    expect(fresh!.credential).toMatchObject({ accessToken: '1000.zoho-a1', scheme: 'Zoho-oauthtoken' });
    const request = fresh!.authorize(new Request('https://www.zohoapis.com/crm/v8/users?type=CurrentUser'));
    expect(request.headers.get('authorization')).toBe('Zoho-oauthtoken 1000.zoho-a1');
    expect(shape.seen(zoho.paths.token).map((r) => r.form.get('grant_type'))).toEqual(['authorization_code', 'refresh_token']);
  });
});

describe('Slack with token rotation: nested in the code exchange, top level on refresh', () => {
  it('reads authed_user on the exchange, the top-level pair on each refresh, and sends each new refresh token', async () => {
    const slack = await mirror('slack-rotating', 'shape');
    shape.on(
      slack.paths.token,
      grants(
        () =>
          json({
            ok: true,
            app_id: 'A0KRD7HC3',
            authed_user: {
              id: 'U1234',
              scope: 'users:read',
              access_token: 'xoxe.xoxp-a0',
              expires_in: 43200,
              refresh_token: 'xoxe-1-r0',
              token_type: 'user',
            },
            team: { id: 'T9TK3CUKW', name: 'Team' },
          }),
        (n) =>
          json({
            ok: true,
            access_token: `xoxe.xoxp-a${n}`,
            expires_in: 43200,
            refresh_token: `xoxe-1-r${n}`,
            token_type: 'user',
            scope: 'users:read',
          }),
      ),
    );
    const { done } = await authorize(slack.serviceId, 'nia');
    expect(done.identity.profile).toEqual({ id: 'U1234' });
    expect((await broker.getIdentity(slack.serviceId, 'nia'))!.accessToken).toBe('xoxe.xoxp-a0');
    now += 13 * HOUR;
    expect((await broker.getIdentity(slack.serviceId, 'nia'))!.accessToken).toBe('xoxe.xoxp-a1');
    now += 13 * HOUR;
    const fresh = await broker.getIdentity(slack.serviceId, 'nia');
    expect(fresh!.accessToken).toBe('xoxe.xoxp-a2');
    expect(JSON.stringify(fresh!.native)).not.toContain('xoxe-1-r');

    const requests = shape.seen(slack.paths.token);
    expect(requests.slice(1).map((r) => r.form.get('refresh_token'))).toEqual(['xoxe-1-r0', 'xoxe-1-r1']);
    for (const request of requests) expectClientSecretPost(request);
  });

  it('a refresh refused with ok:false and HTTP 200 marks the identity for reauthorization', async () => {
    const slack = await mirror('slack-rotating', 'refused');
    shape.on(
      slack.paths.token,
      grants(
        () =>
          json({
            ok: true,
            authed_user: { id: 'U9', access_token: 'xoxe.xoxp-b0', expires_in: 43200, refresh_token: 'xoxe-1-b0', token_type: 'user' },
          }),
        () => json({ ok: false, error: 'invalid_grant' }),
      ),
    );
    await authorize(slack.serviceId, 'oz');
    now += 13 * HOUR;
    await expect(broker.getIdentity(slack.serviceId, 'oz')).rejects.toBeInstanceOf(ReauthorizationRequired);
  });
});

describe("the client id under another name (TikTok's client_key)", () => {
  it('sends client_key, never client_id, in the authorization request and the token requests', async () => {
    const tiktok = await mirror('tiktok', 'shape');
    shape.on(
      tiktok.paths.token,
      grants(
        () =>
          json({
            open_id: 'open-1',
            scope: 'user.info.basic',
            access_token: 'act.a0',
            expires_in: 86400,
            refresh_token: 'rft.r0',
            refresh_expires_in: 31536000,
            token_type: 'Bearer',
          }),
        () =>
          json({
            open_id: 'open-1',
            scope: 'user.info.basic',
            access_token: 'act.a1',
            expires_in: 86400,
            refresh_token: 'rft.r1',
            refresh_expires_in: 31536000,
            token_type: 'Bearer',
          }),
      ),
    );
    const { url, done } = await authorize(tiktok.serviceId, 'pat');
    expect(url.searchParams.get('client_key')).toBe(CLIENT_ID);
    expect(url.searchParams.has('client_id')).toBe(false);
    expect(url.searchParams.get('scope')).toBe('user.info.basic');
    expect(done.identity.profile).toEqual({ id: 'open-1' });
    now += 2 * DAY;
    expect((await broker.getIdentity(tiktok.serviceId, 'pat'))!.accessToken).toBe('act.a1');
    const requests = shape.seen(tiktok.paths.token);
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(request.form.get('client_key')).toBe(CLIENT_ID);
      expect(request.form.has('client_id')).toBe(false);
      expect(request.form.get('client_secret')).toBe(CLIENT_SECRET);
    }
    expect(requests[1]!.form.get('refresh_token')).toBe('rft.r0');
  });
});

describe('token responses the engine cannot use', () => {
  it.each([
    ['HTML with HTTP 200', { raw: '<html><body>Sign in</body></html>', contentType: 'text/html' }, 'invalid_response', /HTTP 200/],
    [
      'a JSON content type over a body that is not JSON',
      { raw: '{"access_token": "tok-secret-1",', contentType: 'application/json' },
      'invalid_response',
      /HTTP 200/,
    ],
    [
      'expires_in as an object',
      { body: { access_token: 'tok-secret-2', token_type: 'bearer', expires_in: { seconds: 3600 } } },
      'invalid_response',
      /expires_in/,
    ],
    ['access_token as a number', { body: { access_token: 1234567, token_type: 'bearer' } }, 'invalid_response', /access_token/],
    [
      'an HTML error page with HTTP 502',
      { status: 502, raw: '<html>Bad Gateway</html>', contentType: 'text/html' },
      'temporarily_unavailable',
      /HTTP 502/,
    ],
  ])('%s: a clear error, and nothing stored', async (name, answer, error, says) => {
    const bad = await mirror(
      'github',
      `bad-${name
        .replace(/[^a-z0-9]+/gi, '-')
        .toLowerCase()
        .slice(0, 30)}`,
    );
    shape.on(bad.paths.token, () => answer);
    shape.on(bad.paths.profile!, () => json({ id: 1, login: 'never' }));
    const failure = await authorize(bad.serviceId, 'kim').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(AuthorizationFailed);
    expect(failure).toMatchObject({ error });
    expect((failure as Error).message).toMatch(says);
    expect((failure as Error).message).not.toContain('tok-secret');
    expect(shape.seen(bad.paths.profile!)).toEqual([]);
    await expectNothingStored(bad.serviceId);
  });
});
