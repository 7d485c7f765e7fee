import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProxyRefused, ReauthorizationRequired, type RemoteBroker } from '@everyauth/core';
import { createApiKey, serverLogger } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { captureLogs, expectNoSecrets, storedTokens } from '../../core/test/security/support.js';
import { startUpstream, type Upstream } from '../../core/test/support/upstream.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * /v1/proxy over HTTP and RemoteBroker.fetch through it, with a `proxy`-scoped key: the identity
 * chosen by header fields, bodies streamed both ways, EveryAuth's errors told apart from the API's,
 * metrics per service and status class; every log line scanned for the tokens and keys at the end.
 */

let as: AuthServer;
let upstream: Upstream;
let t: TestServer;
let proxyKey: string;
let remote: RemoteBroker;
const serverLines: string[] = [];
const brokerLogs = captureLogs();
const secrets = new Set<string>();

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  upstream = await startUpstream(`${as.issuer}/me`);
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      serverLines.push(chunk.toString('utf8'));
      done();
    },
  });
  t = await startTestServer(as, {
    server: { apiKeyRateLimit: false, logger: serverLogger('trace', sink) },
    broker: { logger: brokerLogs.logger, proxy: { firstByteTimeoutMs: 2_000 } },
  });
  await t.broker.putService({ id: 'local', apiBaseUrls: [`${upstream.origin}/api`] });
  proxyKey = (await createApiKey(t.store, { name: 'proxy only', scopes: ['proxy'] })).key;
  remote = t.remote(proxyKey);
  for (const key of [proxyKey, t.adminKey, t.readerKey]) secrets.add(key);
  for (const [userId, tenantId] of [
    ['alice', undefined],
    ['bob', 'acme'],
  ] as const) {
    const started = await t.broker.beginAuthorization({ serviceId: 'local', userId, tenantId, tags: { team: 'blue' } });
    const done = await t.broker.completeAuthorization('local', (await as.authorize(started.url, { login: userId })).searchParams);
    const tokens = await storedTokens(t.broker, done.identity.id);
    secrets.add(tokens.access);
    secrets.add(tokens.refresh!);
  }
});
afterAll(async () => {
  expectNoSecrets(serverLines.join('') + brokerLogs.text(), secrets);
  await t?.close();
  await upstream?.close();
  await as?.close();
});
beforeEach(() => {
  upstream.seen.length = 0;
});

const proxied = (path: string, init: RequestInit & { key?: string | null } = {}) =>
  t.request(`/v1/proxy/local${path}`, { key: proxyKey, ...init, headers: { 'everyauth-user-id': 'alice', ...init.headers } });

describe('/v1/proxy', () => {
  it('calls the API as the identity the headers name, with its token instead of the API key', async () => {
    const response = await proxied('/things/1?x=2', { headers: { 'x-custom': 'kept' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('everyauth-proxy')).toBe('upstream');
    expect(await response.json()).toMatchObject({ method: 'GET', path: '/api/things/1', query: '?x=2' });
    const seen = upstream.seen[0]!.headers;
    expect(seen.authorization).toMatch(/^Bearer /);
    expect(seen.authorization).not.toContain(proxyKey);
    expect(seen['x-custom']).toBe('kept');
    expect(seen['everyauth-user-id']).toBeUndefined();
  });

  it('chooses the identity by id, or by user, tenant and tags', async () => {
    const bob = await t.broker.findIdentity('local', { userId: 'bob', tenantId: 'acme' });
    for (const headers of [
      { 'everyauth-identity-id': bob!.id },
      { 'everyauth-user-id': 'bob', 'everyauth-tenant-id': 'acme' },
      { 'everyauth-user-id': 'bob', 'everyauth-tags': 'team=blue' },
    ]) {
      const response = await t.request('/v1/proxy/local/check', { key: proxyKey, headers });
      expect(await response.json()).toMatchObject({ sub: 'bob' });
    }
    const none = await t.request('/v1/proxy/local/check', { key: proxyKey });
    expect(none.status).toBe(400);
    expect(none.headers.get('everyauth-proxy')).toBeNull();
    expect((await none.json()).message).toMatch(/EveryAuth-Identity-Id/);
  });

  it('passes every method and streams bodies both ways', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const response = await proxied('/echo', {
        method,
        body: 'x'.repeat(200_000),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(await response.json()).toMatchObject({ method, bytes: 200_000 });
    }
    const head = await proxied('/echo', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await proxied('/no-content', { method: 'DELETE' })).status).toBe(204);
  });

  it('needs the proxy or tokens:read scope, and the proxy scope reads no token', async () => {
    expect((await proxied('/echo', { key: null })).status).toBe(401);
    expect((await proxied('/echo', { key: t.readerKey })).status).toBe(200);
    expect((await t.request('/v1/services/local/token?userId=alice', { key: proxyKey })).status).toBe(403);
    expect((await t.request('/v1/services', { key: proxyKey })).status).toBe(403);
  });

  it('refuses paths that leave the base URL, as sent on the wire before any normalizing', async () => {
    for (const path of ['/a/../../../v1/identities', '/a/%2e%2e/b', '//attacker.example/x', '/a%5c..%5cb'.replace('%5c', '\\')]) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${t.url}/v1/proxy/local${path}`, {
          headers: { authorization: `Bearer ${proxyKey}`, 'everyauth-user-id': 'alice' },
        });
        req.path = `/v1/proxy/local${path}`; // exactly these bytes
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status, path).toBe(400);
    }
    expect(upstream.seen).toEqual([]);
  });

  /** Revokes alice's access token, calls `path`, and expects one renewal and the resend to succeed. */
  async function renewsOnce(path: string) {
    const alice = await t.broker.getIdentity('local', 'alice');
    await (await as.provider.AccessToken.find(alice!.accessToken)).destroy();
    as.resetCounters();
    const response = await proxied(path);
    expect(await response.json()).toMatchObject({ sub: 'alice' });
    expect(as.tokenRequests.byGrant.refresh_token).toBe(1);
    const renewed = await storedTokens(t.broker, alice!.identityId);
    secrets.add(renewed.access);
    secrets.add(renewed.refresh!);
  }

  it('renews a refused token once and resends', () => renewsOnce('/check'));

  it("renews on the provider's declared auth failure, and passes the same status without it through byte for byte", async () => {
    const idp = await t.broker.getProvider('local-idp');
    await t.broker.putProvider({ ...idp, api: { ...idp.api, authFailure: { status: [400], field: 'error.code', values: [190] } } });
    const other = await proxied('/graph/other');
    expect(other.status).toBe(400);
    expect(await other.text()).toBe(JSON.stringify({ error: { type: 'GraphMethodException', code: 100 } }));
    // Graph API style: 400 with {"error":{"code":190}}, gzip-encoded, for the refused token.
    await renewsOnce('/graph/check');
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await (await t.request('/v1/openapi.json')).json();
    const paths = Object.keys(doc.paths).filter((p) => p.startsWith('/v1/proxy/'));
    expect(paths.length).toBeGreaterThan(0);
    expect(Object.keys(doc.paths[paths[0]!])).toEqual(expect.arrayContaining(['get', 'post', 'put', 'patch', 'delete']));
  });

  it('counts requests per service and status class, with a latency histogram', async () => {
    await proxied('/unauthorized', { headers: { 'everyauth-user-id': 'nobody' } });
    const text = await (await t.request('/metrics', { key: null })).text();
    expect(text).toMatch(/everyauth_proxy_requests_total\{service="local",class="2xx"\} [1-9]/);
    expect(text).toMatch(/everyauth_proxy_requests_total\{service="local",class="4xx"\} [1-9]/);
    expect(text).toMatch(/everyauth_proxy_duration_seconds_count\{service="local"\} [1-9]/);
  });
});

describe('RemoteBroker.fetch', () => {
  it('returns what the API answered, redirects unfollowed', async () => {
    const response = await remote.fetch('local', 'alice', '/things?y=1', { method: 'POST', body: JSON.stringify({ a: 1 }) });
    expect(await response.json()).toMatchObject({ method: 'POST', path: '/api/things', query: '?y=1', bytes: 7 });
    const redirect = await remote.fetch('local', 'alice', '/redirect');
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('https://attacker.example/steal');
    const leaky = await remote.fetch('local', 'alice', '/leaky');
    expect(leaky.headers.get('set-cookie')).toBeNull();
    expect(leaky.headers.get('authorization')).toBeNull();
  });

  it('sends an absolute URL under the base, streams a body, and names the identity by filter', async () => {
    const body = new Blob([new Uint8Array(3 * 1024 * 1024)]).stream();
    const response = await remote.fetch('local', { userId: 'bob', tenantId: 'acme' }, `${upstream.origin}/api/echo`, {
      method: 'PUT',
      body,
      duplex: 'half',
    } as RequestInit);
    expect(await response.json()).toMatchObject({ method: 'PUT', path: '/api/echo', bytes: 3 * 1024 * 1024 });
  });

  it("rebuilds EveryAuth's own errors as the typed errors", async () => {
    await expect(remote.fetch('local', 'alice', 'https://attacker.example/')).rejects.toBeInstanceOf(ProxyRefused);
    await expect(remote.fetch('local', 'alice', '/a/../b')).rejects.toBeInstanceOf(ProxyRefused);
    await expect(remote.fetch('local', 'nobody', '/x')).rejects.toMatchObject({ code: 'identity_not_found' });
    await expect(remote.fetch('local', 'alice', '/hang')).rejects.toMatchObject({ code: 'upstream_timeout', phase: 'first_byte' });
    await t.broker.putService({ id: 'second', providerId: 'local-idp', clientId: t.clientId });
    await expect(remote.fetch('second', 'alice', '/x')).rejects.toMatchObject({ code: 'proxy_refused', reason: 'config' });
  });

  it('marks the identity needs_reauth after a second 401 and then refuses', async () => {
    const response = await remote.fetch('local', { userId: 'bob', tenantId: 'acme' }, '/unauthorized');
    expect(response.status).toBe(401);
    await expect(remote.fetch('local', { userId: 'bob', tenantId: 'acme' }, '/x')).rejects.toBeInstanceOf(ReauthorizationRequired);
  });
});

describe('/v1/proxy uploads and the server request timeout', () => {
  /** PUTs `chunks` chunks of 16 KiB, `gapMs` apart, through `server`; the status, or the error that ended it. */
  function slowUpload(server: TestServer, chunks: number, gapMs: number): Promise<{ status?: number; body?: string; error?: string }> {
    return new Promise((resolve) => {
      const url = new URL('/v1/proxy/local/echo', server.url);
      const req = httpRequest(url, {
        method: 'PUT',
        headers: { authorization: `Bearer ${shortKey}`, 'everyauth-user-id': 'alice', 'content-type': 'application/octet-stream' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
      let sent = 0;
      const next = () => {
        if (req.destroyed) return;
        if (sent++ === chunks) return void req.end();
        req.write(Buffer.alloc(16 * 1024, 1));
        setTimeout(next, gapMs);
      };
      next();
    });
  }

  let short: TestServer;
  let shortKey: string;
  beforeAll(async () => {
    short = await startTestServer(as, { server: { apiKeyRateLimit: false, requestTimeoutMs: 500 } });
    await short.broker.putService({ id: 'local', apiBaseUrls: [`${upstream.origin}/api`] });
    shortKey = (await createApiKey(short.store, { name: 'proxy only', scopes: ['proxy'] })).key;
    const started = await short.broker.beginAuthorization({ serviceId: 'local', userId: 'alice' });
    await short.broker.completeAuthorization('local', (await as.authorize(started.url, { login: 'alice' })).searchParams);
  });
  afterAll(async () => {
    await short?.close();
  });

  it('lets an upload take longer than the timeout while it keeps sending, and cuts one that pauses that long', async () => {
    // 12 chunks 100 ms apart: 1.2 s in all, more than twice the 500 ms budget, never a pause near it.
    const steady = await slowUpload(short, 12, 100);
    expect(steady.status).toBe(200);
    expect(JSON.parse(steady.body!)).toMatchObject({ method: 'PUT', path: '/api/echo', bytes: 12 * 16 * 1024 });
    // A pause of 1.5 s: the connection is closed (the answer may already have started, so no 200 with the whole body).
    const stalled = await slowUpload(short, 2, 1_500);
    expect(stalled.status === 200 && JSON.parse(stalled.body!).bytes === 2 * 16 * 1024).toBe(false);
  });

  it("still gives the other routes' bodies the timeout in all", async () => {
    const r = await new Promise<string>((resolve) => {
      const req = httpRequest(new URL('/v1/services', short.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${short.adminKey}`, 'content-type': 'application/json', 'content-length': '500' },
      });
      req.on('response', (res) => resolve(String(res.statusCode)));
      req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      // A byte every 100 ms: never idle, but the whole body would take 50 s.
      const drip = setInterval(() => (req.destroyed ? clearInterval(drip) : req.write('{')), 100);
      req.on('close', () => clearInterval(drip));
    });
    expect(r).toBe('408');
  });
});
