import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from './support/auth-server.js';

const redirectUri = 'http://127.0.0.1:9/callback';
const client: oauth.Client = { client_id: 'app', token_endpoint_auth_method: 'client_secret_basic' };
const clientAuth = oauth.ClientSecretBasic('app-secret');
const insecure = { [oauth.allowInsecureRequests]: true };

let server: AuthServer;
let as: oauth.AuthorizationServer;

beforeAll(async () => {
  server = await startAuthServer({
    clients: [{ client_id: 'app', client_secret: 'app-secret', redirect_uris: [redirectUri] }],
  });
  const issuer = new URL(server.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }));
});

afterAll(() => server.close());

/** What the broker does: build an authorization URL with PKCE S256 and state. */
async function authorizationRequest(scope = 'openid email profile tasks:read') {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).toString();
  return { url, verifier, state };
}

async function signIn(login: string, scope?: string) {
  const { url, verifier, state } = await authorizationRequest(scope);
  const callback = await server.authorize(url, { login });
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, verifier, insecure);
  return oauth.processAuthorizationCodeResponse(as, client, response);
}

function refresh(refreshToken: string) {
  return oauth
    .refreshTokenGrantRequest(as, client, clientAuth, refreshToken, insecure)
    .then((response) => oauth.processRefreshTokenResponse(as, client, response));
}

describe('test authorization server', () => {
  it('runs the code flow with PKCE and returns iss, a refresh token and a working access token', async () => {
    const { url, state } = await authorizationRequest();
    const callback = await server.authorize(url, { login: 'alice' });
    expect(callback.origin + callback.pathname).toBe(redirectUri);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('iss')).toBe(server.issuer);

    const tokens = await signIn('alice');
    expect(tokens.refresh_token).toBeTypeOf('string');
    expect(tokens.expires_in).toBe(5);
    expect(tokens.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email', 'profile', 'tasks:read']));

    const userinfo = await server.userinfo(tokens.access_token);
    expect(userinfo.status).toBe(200);
    expect(await userinfo.json()).toMatchObject({ sub: 'alice', name: 'User alice', email: 'alice@example.test' });
  });

  it('rotates refresh tokens and rejects a rotated-away one (revoking the whole grant)', async () => {
    const first = await signIn('bob');
    const second = await refresh(first.refresh_token!);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(await server.isRefreshTokenActive(first.refresh_token!)).toBe(false);
    expect(await server.isRefreshTokenActive(second.refresh_token!)).toBe(true);

    await expect(refresh(first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // oidc-provider treats reuse as theft: the newest token dies with the grant.
    expect(await server.isRefreshTokenActive(second.refresh_token!)).toBe(false);
  });

  it('revokes grants by account', async () => {
    const tokens = await signIn('carol');
    expect(await server.revokeGrantsFor('carol')).toBe(1);
    expect(await server.isRefreshTokenActive(tokens.refresh_token!)).toBe(false);
    await expect(refresh(tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('answers deny with error=access_denied on the redirect_uri', async () => {
    const { url, state } = await authorizationRequest();
    const callback = await server.authorize(url, { deny: true });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('iss')).toBe(server.issuer);
  });

  it('counts token requests by grant and injects faults', async () => {
    const tokens = await signIn('dave');
    server.resetCounters();

    server.failNextTokenRequests(1, { status: 503, body: { error: 'temporarily_unavailable' } });
    const faulted = await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token!, insecure);
    expect(faulted.status).toBe(503);
    expect(await faulted.json()).toEqual({ error: 'temporarily_unavailable' });

    server.failNextTokenRequests(1, { reset: true });
    await expect(refresh(tokens.refresh_token!)).rejects.toThrow();

    server.failNextTokenRequests(1, { delayMs: 200 });
    const started = Date.now();
    await refresh(tokens.refresh_token!);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);

    expect(server.tokenRequests).toMatchObject({ total: 3, byGrant: { refresh_token: 3 } });
  });

  it('holds every token request for tokenDelayMs, counting it on arrival', async () => {
    const tokens = await signIn('erin');
    server.resetCounters();
    server.tokenDelayMs = 300;
    try {
      const inFlight = refresh(tokens.refresh_token!);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(server.tokenRequests.total).toBe(1);
      await inFlight;
    } finally {
      server.tokenDelayMs = 0;
    }
  });

  it('lets a client be registered after start', async () => {
    await server.addClient({ client_id: 'late', client_secret: 's', redirect_uris: ['http://127.0.0.1:10/cb'] });
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: 'late',
      redirect_uri: 'http://127.0.0.1:10/cb',
      response_type: 'code',
      scope: 'email',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
      state: 'x',
    }).toString();
    expect((await server.authorize(url)).searchParams.get('code')).toBeTruthy();
  });

  it('issues refresh tokens without openid, but userinfo then answers 403 insufficient_scope', async () => {
    const tokens = await signIn('frank', 'email tasks:read');
    expect(tokens.refresh_token).toBeTypeOf('string');
    expect(tokens.scope).toBe('email tasks:read');
    const userinfo = await server.userinfo(tokens.access_token);
    expect(userinfo.status).toBe(403);
    expect(userinfo.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('keeps the refresh token when rotation is off, with client_secret_post', async () => {
    const other = await startAuthServer({
      rotateRefreshTokens: false,
      clients: [{ client_id: 'post', client_secret: 'p', redirect_uris: [redirectUri], token_endpoint_auth_method: 'client_secret_post' }],
    });
    try {
      const otherAs = await oauth.processDiscoveryResponse(
        new URL(other.issuer),
        await oauth.discoveryRequest(new URL(other.issuer), insecure),
      );
      const postClient: oauth.Client = { client_id: 'post' };
      const verifier = oauth.generateRandomCodeVerifier();
      const url = new URL(otherAs.authorization_endpoint!);
      url.search = new URLSearchParams({
        client_id: 'post',
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid',
        state: 's',
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();
      const params = oauth.validateAuthResponse(otherAs, postClient, await other.authorize(url), 's');
      const auth = oauth.ClientSecretPost('p');
      const tokens = await oauth.processAuthorizationCodeResponse(
        otherAs,
        postClient,
        await oauth.authorizationCodeGrantRequest(otherAs, postClient, auth, params, redirectUri, verifier, insecure),
      );
      const refreshed = await oauth.processRefreshTokenResponse(
        otherAs,
        postClient,
        await oauth.refreshTokenGrantRequest(otherAs, postClient, auth, tokens.refresh_token!, insecure),
      );
      expect(refreshed.refresh_token).toBe(tokens.refresh_token);
      expect(await other.isRefreshTokenActive(tokens.refresh_token!)).toBe(true);
      expect(other.tokenRequests).toMatchObject({ total: 2, byGrant: { authorization_code: 1, refresh_token: 1 } });
    } finally {
      await other.close();
    }
  });

  it('requires PKCE', async () => {
    const { url } = await authorizationRequest();
    url.searchParams.delete('code_challenge');
    url.searchParams.delete('code_challenge_method');
    const callback = await server.authorize(url);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
  });
});
