/**
 * The built-in sandbox authorization server: driven over HTTP through its own sign-in and consent
 * pages, by the broker (code flow, refresh, revocation) and by hand (rotation, reuse detection).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { authorizeOverHttp } from '@everyauth/oauth-server';
import { AuthorizationFailed, LocalBroker, ReauthorizationRequired, Vault, createKeyRing, openSqliteStore } from '@everyauth/core';
import {
  createSandbox,
  registerSandboxService,
  sandboxRoutes,
  sandboxWanted,
  serverSandbox,
  startSandbox,
  SANDBOX_PATH,
  type Sandbox,
} from '../src/sandbox/index.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-sandbox-'));
  dirs.push(dir);
  return dir;
};

async function openBroker(baseUrl: string): Promise<LocalBroker> {
  const store = await openSqliteStore({ path: join(tempDir(), 'everyauth.db') });
  return new LocalBroker({ store, vault: Vault.fromKeyRing(createKeyRing()), baseUrl, refresh: { attempts: 1, marginMs: 10_000 } });
}

interface DriveOptions {
  login?: string;
  deny?: 'at-login' | 'at-consent';
}

/**
 * A browser, minus the browser (@everyauth/oauth-server's HTTP driver: redirects, cookies), that
 * on the sandbox's sign-in and consent pages submits their forms. Returns the first redirect that
 * leaves the sandbox (the client's redirect_uri), unfetched.
 */
function driveSandbox(sandbox: Sandbox, start: string, options: DriveOptions = {}): Promise<URL> {
  return authorizeOverHttp(sandbox.issuer, start, {
    answer: (page, html) => {
      const actions = [...html.matchAll(/action="([^"]+)"/g)].map((m) => new URL(m[1]!, page));
      const find = (step: string) => actions.find((a) => a.pathname.endsWith(`/${step}`))!;
      if (html.includes('id="sign-in"'))
        return options.deny === 'at-login'
          ? { url: find('abort'), form: {} }
          : { url: find('login'), form: { login: options.login ?? 'alice' } };
      if (html.includes('id="allow"'))
        return options.deny === 'at-consent' ? { url: find('abort'), form: {} } : { url: find('consent'), form: {} };
      throw new Error(`unexpected sandbox page at ${page.pathname}: ${html.slice(0, 300)}`);
    },
  });
}

describe('sandbox on its own port, with a LocalBroker', () => {
  let sandbox: Sandbox;
  let broker: LocalBroker;

  beforeAll(async () => {
    sandbox = await startSandbox({ accessTokenTtl: 60 });
    broker = await openBroker('http://127.0.0.1:3999');
    await registerSandboxService(broker, sandbox);
  });
  afterAll(async () => {
    await broker?.close();
    await sandbox?.close();
  });

  it('registers provider and service "sandbox", so a flow needs no configuration', async () => {
    const service = await broker.getService('sandbox');
    expect(service).toMatchObject({
      providerId: 'sandbox',
      clientId: 'everyauth-sandbox',
      hasClientSecret: true,
      redirectUrl: 'http://127.0.0.1:3999/sandbox/callback',
    });
    const provider = await broker.getProvider('sandbox');
    expect(provider).toMatchObject({
      issuer: sandbox.issuer,
      tokenUrl: `${sandbox.issuer}/token`,
      authorizationResponseIss: true,
      pkce: true,
    });
  });

  it('authorizes through sign-in and consent, refreshes with a short-lived token, and revokes the grant', async () => {
    const started = await broker.beginAuthorization({ serviceId: 'sandbox', userId: 'u-1', tags: { plan: 'trial' } });
    const callback = await driveSandbox(sandbox, started.url, { login: 'alice' });
    expect(callback.pathname).toBe('/sandbox/callback');
    expect(callback.searchParams.get('iss')).toBe(sandbox.issuer); // RFC 9207

    const { identity } = await broker.completeAuthorization('sandbox', callback.searchParams);
    expect(identity).toMatchObject({ userId: 'u-1', status: 'active', profile: { id: 'alice', email: 'alice@sandbox.everyauth.test' } });
    const ttlMs = Date.parse(identity.expiresAt!) - Date.now();
    expect(ttlMs).toBeGreaterThan(50_000);
    expect(ttlMs).toBeLessThanOrEqual(61_000);

    const first = await broker.getIdentity('sandbox', 'u-1');
    const refreshed = await broker.getIdentity('sandbox', 'u-1', { force: true });
    expect(refreshed!.accessToken).not.toBe(first!.accessToken);
    const again = await broker.getIdentity('sandbox', 'u-1', { force: true }); // the rotated refresh token works too
    expect(again!.accessToken).not.toBe(refreshed!.accessToken);
    const events = await broker.listEvents({ identityId: identity.id });
    expect(events.filter((e) => e.type === 'identity.refreshed')).toHaveLength(2);

    expect(await broker.deleteIdentity(identity.id, { revoke: true })).toBe(true);
    expect(await sandbox.revokeGrantsFor('alice')).toBe(0); // RFC 7009 revocation ended the grant at the sandbox
  });

  it('a grant revoked at the sandbox makes the next refresh fail with invalid_grant → needs_reauth', async () => {
    const started = await broker.beginAuthorization({ serviceId: 'sandbox', userId: 'u-2' });
    await broker.completeAuthorization('sandbox', (await driveSandbox(sandbox, started.url, { login: 'bob' })).searchParams);
    expect(await sandbox.revokeGrantsFor('bob')).toBe(1);
    await expect(broker.getIdentity('sandbox', 'u-2', { force: true })).rejects.toBeInstanceOf(ReauthorizationRequired);
    expect((await broker.findIdentity('sandbox', 'u-2'))!.status).toBe('needs_reauth');
  });

  it.each(['at-login', 'at-consent'] as const)('denying %s comes back as access_denied, and nothing is stored', async (deny) => {
    const userId = `denied-${deny}`;
    const started = await broker.beginAuthorization({ serviceId: 'sandbox', userId });
    // A fresh cookie jar per drive: a second flow in one browser would skip sign-in (the sandbox remembers it).
    const callback = await driveSandbox(sandbox, started.url, { login: 'carol', deny });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const failure = await broker.completeAuthorization('sandbox', callback.searchParams).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(AuthorizationFailed);
    expect((failure as AuthorizationFailed).description).toMatch(/denied/);
    expect(await broker.findIdentity('sandbox', userId)).toBeUndefined();
  });

  it('an unknown interaction gets a readable page, not a stack trace', async () => {
    const response = await fetch(`${sandbox.issuer}/interaction/nope`);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await response.text();
    expect(html).toContain('The sign-in could not continue');
    expect(html).not.toMatch(/at \w+ \(/);
  });
});

describe('sandbox protocol, by hand', () => {
  let sandbox: Sandbox;
  const redirectUri = 'http://127.0.0.1:3999/hand/callback';

  beforeAll(async () => {
    sandbox = await startSandbox({ accessTokenTtl: 30 });
    await sandbox.ensureClient('by-hand', 'by-hand-secret', [redirectUri]);
  });
  afterAll(() => sandbox?.close());

  const tokenRequest = (form: Record<string, string>) =>
    fetch(`${sandbox.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('by-hand:by-hand-secret').toString('base64')}` },
      body: new URLSearchParams(form),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));

  async function codeFor(challenge?: string): Promise<URL> {
    const url = new URL(`${sandbox.issuer}/auth`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'by-hand',
      redirect_uri: redirectUri,
      scope: 'openid',
      state: 's',
    }).toString();
    if (challenge) {
      url.searchParams.set('code_challenge', challenge);
      url.searchParams.set('code_challenge_method', 'S256');
    }
    return driveSandbox(sandbox, url.href);
  }

  it('requires PKCE (RFC 9700 §2.1.1)', async () => {
    const callback = await codeFor();
    expect(callback.searchParams.get('error')).toBe('invalid_request');
  });

  it('issues short-lived access tokens and rotating refresh tokens; reusing a rotated one revokes the grant', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const callback = await codeFor(createHash('sha256').update(verifier).digest('base64url'));
    const code = callback.searchParams.get('code')!;
    const issued = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
    expect(issued.status).toBe(200);
    expect(issued.body).toMatchObject({ token_type: 'Bearer', expires_in: 30 });
    expect(issued.body.refresh_token).toEqual(expect.any(String));

    const rotated = await tokenRequest({ grant_type: 'refresh_token', refresh_token: issued.body.refresh_token });
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(issued.body.refresh_token);

    const reused = await tokenRequest({ grant_type: 'refresh_token', refresh_token: issued.body.refresh_token });
    expect(reused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const afterReuse = await tokenRequest({ grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token });
    expect(afterReuse.body.error).toBe('invalid_grant');
  });
});

describe('sandbox mounted in a Fastify app, next to /{serviceId}/callback', () => {
  let app: FastifyInstance;
  let sandbox: Sandbox;
  let broker: LocalBroker;
  let baseUrl: string;
  const stateFile = join(tempDir(), 'sandbox.json');
  // The sandbox needs its issuer, so the app's port, before it exists: the routes get a proxy to
  // whichever sandbox is current (which also lets the restart test swap in a new one).
  let current: Sandbox | undefined;

  beforeAll(async () => {
    app = Fastify();
    const proxy: Sandbox = {
      get issuer() {
        return current!.issuer;
      },
      basePath: SANDBOX_PATH,
      handle: (req, res) => current!.handle(req, res),
      ensureClient: (...args) => current!.ensureClient(...args),
      providerDefinition: (id) => current!.providerDefinition(id),
      revokeGrantsFor: (id) => current!.revokeGrantsFor(id),
      close: () => current!.close(),
    };
    await app.register(sandboxRoutes, { sandbox: proxy });
    app.get<{ Params: { serviceId: string } }>('/:serviceId/callback', async (request) => {
      const { identity } = await broker.completeAuthorization(request.params.serviceId, new URL(request.url, baseUrl).searchParams);
      return { identityId: identity.id };
    });
    baseUrl = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('[::1]', '127.0.0.1');
    current = await createSandbox({ issuer: `${baseUrl}${SANDBOX_PATH}`, stateFile });
    sandbox = proxy;
    broker = await openBroker(baseUrl);
    await registerSandboxService(broker, sandbox);
  });
  afterAll(async () => {
    await broker?.close();
    await app?.close();
  });

  it('serves discovery under the mount path, consistent with the issuer', async () => {
    const metadata = (await (await fetch(`${baseUrl}${SANDBOX_PATH}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    expect(metadata.issuer).toBe(`${baseUrl}${SANDBOX_PATH}`);
    expect(metadata.token_endpoint).toBe(`${baseUrl}${SANDBOX_PATH}/token`);
    expect(metadata.authorization_endpoint).toBe(`${baseUrl}${SANDBOX_PATH}/auth`);
    // Core's own RFC 8414 / OIDC discovery agrees with the definition the server registers.
    const discovered = await broker.discoverProvider('sandbox-discovered', sandbox.issuer);
    expect(discovered).toMatchObject({
      issuer: sandbox.issuer,
      tokenUrl: `${sandbox.issuer}/token`,
      revocationUrl: `${sandbox.issuer}/token/revocation`,
    });
  });

  it('runs the whole flow through the app, the callback route included, and keeps its grants across a restart', async () => {
    const started = await broker.beginAuthorization({ serviceId: 'sandbox', userId: 'mounted' });
    const callback = await driveSandbox(sandbox, started.url, { login: 'dana' });
    expect(callback.href.startsWith(`${baseUrl}/sandbox/callback?`)).toBe(true);
    const response = await fetch(callback);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ identityId: expect.stringMatching(/^idn_/) });

    // A new sandbox on the same state file, as after `everyauth serve` restarts: the refresh token still works.
    await sandbox.close();
    const restarted = await createSandbox({ issuer: `${baseUrl}${SANDBOX_PATH}`, stateFile });
    current = restarted;
    await registerSandboxService(broker, sandbox);
    const fresh = await broker.getIdentity('sandbox', 'mounted', { force: true });
    expect(fresh!.accessToken).toEqual(expect.any(String));
    await restarted.close();
  });
});

describe('when a server runs the sandbox', () => {
  it('is on for a SQLite store, off for PostgreSQL or NODE_ENV=production; EVERYAUTH_SANDBOX or an explicit choice overrides', () => {
    expect(sandboxWanted('/srv/app/.everyauth/everyauth.db', {})).toBe(true);
    expect(sandboxWanted('postgres://db.internal/everyauth', {})).toBe(false);
    expect(sandboxWanted('postgresql://db.internal/everyauth', {})).toBe(false);
    expect(sandboxWanted('/srv/app/.everyauth/everyauth.db', { NODE_ENV: 'production' })).toBe(false);
    expect(sandboxWanted('/srv/app/.everyauth/everyauth.db', { NODE_ENV: 'production', EVERYAUTH_SANDBOX: 'true' })).toBe(true);
    expect(sandboxWanted('postgres://db.internal/everyauth', { EVERYAUTH_SANDBOX: '1' })).toBe(true);
    expect(sandboxWanted('/srv/app/.everyauth/everyauth.db', { EVERYAUTH_SANDBOX: 'false' })).toBe(false);
    expect(sandboxWanted('/srv/app/.everyauth/everyauth.db', { EVERYAUTH_SANDBOX: '1' }, false)).toBe(false);
  });

  it('mounts under /_sandbox of the public URL, with its state next to a SQLite store and in memory otherwise', async () => {
    const dir = tempDir();
    const onSqlite = await serverSandbox('http://127.0.0.1:4000/', join(dir, 'everyauth.db'));
    expect(onSqlite).toMatchObject({ issuer: 'http://127.0.0.1:4000/_sandbox', basePath: '/_sandbox' });
    await onSqlite.ensureClient('c', 's', ['http://127.0.0.1:4000/sandbox/callback']);
    await onSqlite.close();
    expect(existsSync(join(dir, 'sandbox.json'))).toBe(true);
    expect(statSync(join(dir, 'sandbox.json')).mode & 0o777).toBe(0o600);

    const onPostgres = await serverSandbox('https://auth.example.com', 'postgres://db.internal/everyauth');
    expect(onPostgres.issuer).toBe('https://auth.example.com/_sandbox');
    expect(onPostgres.providerDefinition()).toMatchObject({
      tokenUrl: 'https://auth.example.com/_sandbox/token',
      authorizationUrl: 'https://auth.example.com/_sandbox/auth',
    });
    await onPostgres.close();
  });
});
