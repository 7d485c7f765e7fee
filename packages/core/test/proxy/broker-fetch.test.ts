import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProxyRefused, ReauthorizationRequired, UpstreamFailed, type LocalBroker } from '@everyauth/core';
import type { AuthServer } from '../support/auth-server.js';
import { CLIENT_ID, authorizeUser, startTestBroker } from '../support/broker.js';
import { revokeAccessToken as revoke, startProxyTestbed, type ProxyTestbed } from '../support/proxy-testbed.js';
import type { Upstream } from '../support/upstream.js';

let bed: ProxyTestbed;
let server: AuthServer;
let upstream: Upstream;
let broker: LocalBroker;
let base: string;

beforeAll(async () => {
  bed = await startProxyTestbed([], {
    proxy: { firstByteTimeoutMs: 2_000, idleTimeoutMs: 1_000, replayLimitBytes: 1024, retry: { retries: 2, maxWaitMs: 1_000 } },
  });
  ({ server, upstream, broker } = bed);
  base = `${upstream.origin}/api`;
  await broker.putService({ id: 'local', apiBaseUrls: [base] });
});
afterAll(() => bed?.close());
beforeEach(() => {
  upstream.seen.length = 0;
  upstream.counters.clear();
  server.resetCounters();
});

const revokeAccessToken = (userId: string) => revoke(bed, userId);

const code = async (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (err: { code?: string }) => err.code,
  );

describe('broker.fetch', () => {
  it('sends the request under the base URL with the bearer token, and streams the answer back', async () => {
    await authorizeUser(broker, server, 'alice');
    const fresh = await broker.getIdentity('local', 'alice');
    const response = await broker.fetch('local', 'alice', '/things/1?x=2', {
      method: 'PATCH',
      body: 'hello',
      headers: { 'x-custom': 'kept' },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ method: 'PATCH', path: '/api/things/1', query: '?x=2', bytes: 5 });
    expect(upstream.seen[0]!.headers.authorization).toBe(`Bearer ${fresh!.accessToken}`);
    expect(upstream.seen[0]!.headers['x-custom']).toBe('kept');
  });

  it('needs a base URL: a service without one is refused, naming what to set', async () => {
    await broker.putService({ id: 'bare', providerId: 'local-idp', clientId: CLIENT_ID });
    const err = await broker.fetch('bare', 'alice', '/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyRefused);
    expect((err as Error).message).toMatch(/apiBaseUrls/);
    await broker.deleteService('bare');
  });

  it("takes a service's new base URLs from the next request on, and forgets a deleted service's", async () => {
    await authorizeUser(broker, server, 'alice');
    expect((await (await broker.fetch('local', 'alice', '/x')).json()).path).toBe('/api/x');
    await broker.putService({ id: 'local', apiBaseUrls: [`${upstream.origin}/other`] });
    try {
      expect((await (await broker.fetch('local', 'alice', '/x')).json()).path).toBe('/other/x');
      // The old base URL no longer receives the token.
      expect(await code(broker.fetch('local', 'alice', `${base}/x`))).toBe('proxy_refused');
    } finally {
      await broker.putService({ id: 'local', apiBaseUrls: [base] });
    }
    expect((await (await broker.fetch('local', 'alice', '/x')).json()).path).toBe('/api/x');
    // The same id, deleted and made again without base URLs of its own: its provider declares none.
    await broker.putService({ id: 'again', providerId: 'local-idp', clientId: CLIENT_ID, apiBaseUrls: [base] });
    await broker.deleteService('again');
    await broker.putService({ id: 'again', providerId: 'local-idp', clientId: CLIENT_ID });
    expect(await code(broker.fetch('again', 'alice', '/x'))).toBe('proxy_refused');
    await broker.deleteService('again');
  });

  it('refuses a base URL the service tries to declare on an IP address or without https', async () => {
    for (const url of ['http://127.0.0.1:1/api', 'http://api.example.com/', 'https://u:p@api.example.com/']) {
      await expect(broker.putService({ id: 'local', apiBaseUrls: [url] })).rejects.toMatchObject({ code: 'proxy_refused' });
    }
    expect((await broker.getService('local')).apiBaseUrls).toEqual([base]);
  });

  describe('SSRF: nothing is sent, with or without the credential, outside the base URL', () => {
    it.each([
      () => 'https://attacker.example/steal',
      () => '//attacker.example/steal',
      () => `${upstream.origin.replace('localhost', '127.0.0.1')}/api/x`,
      () => `${upstream.origin.replace('localhost', '[::1]')}/api/x`,
      () => `${upstream.origin.replace('localhost', 'local%68ost')}/api/x`,
      () => `${base}@attacker.example/`,
      () => `${upstream.origin.replace('http://', 'http://x:y@')}/api/x`,
      () => `${upstream.origin}/other`,
      () => '/../other',
      () => '/a/%2e%2e/%2e%2e/other',
      () => '/a\\..\\..\\other',
    ])('refuses target #%#', async (target) => {
      await authorizeUser(broker, server, 'ssrf');
      expect(await code(broker.fetch('local', 'ssrf', target()))).toBe('proxy_refused');
      expect(upstream.seen).toEqual([]);
    });

    it('passes a redirect back without following it', async () => {
      const response = await broker.fetch('local', 'alice', '/redirect');
      expect(response.status).toBe(302);
      expect(response.headers.get('location')).toBe('https://attacker.example/steal');
      expect(upstream.seen).toHaveLength(1);
    });
  });

  describe('header fields', () => {
    it('refuses CR LF in a forwarded header, in the value or the name', async () => {
      for (const headers of [
        { 'x-note': 'a\r\nAuthorization: Bearer stolen' },
        { 'x-note': 'a\nx-b: c' },
        { 'x-note\r\nx-evil': 'v' },
        [['x-note', 'a\u0000b']] as [string, string][],
      ]) {
        const err = await broker.fetch('local', 'alice', '/x', { headers }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ProxyRefused);
        expect((err as ProxyRefused).reason).toBe('header');
      }
      expect(upstream.seen).toEqual([]);
    });

    it("replaces the caller's own credentials and drops hop-by-hop and EveryAuth fields", async () => {
      await broker.fetch('local', 'alice', '/x', {
        headers: {
          authorization: 'Bearer caller-key',
          cookie: 'app-session=1',
          'proxy-authorization': 'Basic x',
          connection: 'x-conn-scoped',
          'x-conn-scoped': 'drop me',
          'everyauth-user-id': 'mallory',
          'x-kept': 'yes',
        },
      });
      const seen = upstream.seen[0]!.headers;
      expect(seen.authorization).toMatch(/^Bearer /);
      expect(seen.authorization).not.toBe('Bearer caller-key');
      for (const name of ['cookie', 'proxy-authorization', 'x-conn-scoped', 'everyauth-user-id']) expect(seen[name]).toBeUndefined();
      expect(seen['x-kept']).toBe('yes');
    });

    it('strips credential-bearing and hop-by-hop fields from the response', async () => {
      const response = await broker.fetch('local', 'alice', '/leaky');
      for (const name of ['set-cookie', 'authorization', 'proxy-authorization', 'x-hop', 'connection']) {
        expect(response.headers.get(name)).toBeNull();
      }
      expect(response.headers.get('x-kept')).toBe('yes');
    });

    it('forward gives the status, the fields the caller may see and the body as a Node stream', async () => {
      const proxied = await broker.forward('local', 'alice', '/leaky');
      expect(proxied.status).toBe(200);
      expect(proxied.body).toBeInstanceOf(Readable);
      expect(proxied.headers['x-kept']).toBe('yes');
      for (const name of ['set-cookie', 'authorization', 'proxy-authorization', 'x-hop', 'connection']) {
        expect(proxied.headers[name]).toBeUndefined();
      }
      expect(JSON.parse(await text(proxied.body!))).toEqual({ ok: true });
    });

    it("takes a Node request's parsed fields: a repeated field joined with commas, values trimmed", async () => {
      const proxied = await broker.forward('local', 'alice', '/x', { headers: { 'x-many': ['a', 'b'], 'x-pad': ' \tv ', 'X-Case': 'k' } });
      await text(proxied.body!);
      const seen = upstream.seen[0]!.headers;
      expect([seen['x-many'], seen['x-pad'], seen['x-case']]).toEqual(['a, b', 'v', 'k']);
    });

    it('passes a compressed body as sent, its Content-Encoding still true', async () => {
      const response = await broker.fetch('local', 'alice', '/gzip', { headers: { 'accept-encoding': 'gzip' } });
      expect(upstream.seen[0]!.headers['accept-encoding']).toBe('gzip');
      expect(response.headers.get('content-encoding')).toBe('gzip');
      expect(gunzipSync(Buffer.from(await response.arrayBuffer())).toString()).toBe('hello, decoded');
    });

    it('answers a 204 with no body', async () => {
      const response = await broker.fetch('local', 'alice', '/no-content', { method: 'DELETE' });
      expect(response.status).toBe(204);
      expect(response.body).toBeNull();
    });
  });

  describe('401: one renewal, one resend', () => {
    it('renews a refused token once, resends, and the caller sees the answer', async () => {
      await authorizeUser(broker, server, 'rene');
      await revokeAccessToken('rene');
      server.resetCounters();
      const response = await broker.fetch('local', 'rene', '/check');
      expect(response.status).toBe(200);
      expect((await response.json()).sub).toBe('rene');
      expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
      expect(upstream.seen).toHaveLength(2);
    });

    it('50 concurrent 401s make one refresh', async () => {
      await authorizeUser(broker, server, 'crowd');
      await revokeAccessToken('crowd');
      server.resetCounters();
      const responses = await Promise.all(Array.from({ length: 50 }, () => broker.fetch('local', 'crowd', '/check')));
      expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
    });

    it('a second 401 is passed back, marks the identity needs_reauth with an event, and does not loop', async () => {
      await authorizeUser(broker, server, 'gone');
      server.resetCounters();
      const response = await broker.fetch('local', 'gone', '/unauthorized');
      expect(response.status).toBe(401);
      expect(upstream.seen).toHaveLength(2);
      expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
      const identity = await broker.findIdentity('local', 'gone');
      expect(identity!.status).toBe('needs_reauth');
      const events = await broker.listEvents({ identityId: identity!.id });
      expect(events.map((e) => e.type)).toContain('identity.needs_reauth');
      expect(events.find((e) => e.type === 'identity.needs_reauth')!.data.error).toBe('api_unauthorized');
      await expect(broker.fetch('local', 'gone', '/x')).rejects.toBeInstanceOf(ReauthorizationRequired);
    });

    it('concurrent callers refused twice make one refresh and one needs_reauth event', async () => {
      await authorizeUser(broker, server, 'crowd-gone');
      server.resetCounters();
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () =>
          broker.fetch('local', 'crowd-gone', '/unauthorized').then(
            (r) => r.status,
            (e: { code: string }) => e.code,
          ),
        ),
      );
      // A caller that asks for its renewal after another marked the grant gone learns so at once.
      for (const outcome of outcomes) expect([401, 'reauthorization_required']).toContain(outcome);
      expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
      const identity = await broker.findIdentity('local', 'crowd-gone');
      const events = await broker.listEvents({ identityId: identity!.id });
      expect(events.filter((e) => e.type === 'identity.needs_reauth')).toHaveLength(1);
    });

    it('resends a streamed body under the replay limit after the renewal', async () => {
      await authorizeUser(broker, server, 'small');
      await revokeAccessToken('small');
      const body = new Blob([new Uint8Array(1000)]).stream();
      const response = await broker.fetch('local', 'small', '/check', { method: 'POST', body, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(200);
      expect((await response.json()).bytes).toBe(1000);
      expect(upstream.seen.map((s) => s.bytes)).toEqual([1000, 1000]);
    });

    it('streams a body over the replay limit once: its 401 is passed back, nothing is buffered to resend', async () => {
      await authorizeUser(broker, server, 'large');
      await revokeAccessToken('large');
      server.resetCounters();
      const body = new Blob([new Uint8Array(5000)]).stream();
      const response = await broker.fetch('local', 'large', '/check', { method: 'POST', body, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(401);
      expect(upstream.seen.map((s) => s.bytes)).toEqual([5000]);
      expect(server.tokenRequests.total).toBe(0);
      expect((await broker.findIdentity('local', 'large'))!.status).toBe('active');
    });
  });

  describe('429 and 503 with Retry-After', () => {
    it('retries an idempotent request within the budget', async () => {
      const response = await broker.fetch('local', 'alice', '/busy?times=2&status=503');
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ attempt: 3 });
    });

    it('passes the answer back when the budget is spent, the wait is too long, or the method is not idempotent', async () => {
      expect((await broker.fetch('local', 'alice', '/busy?times=3')).status).toBe(429);
      upstream.counters.clear();
      expect((await broker.fetch('local', 'alice', '/busy?times=1&after=60')).status).toBe(429);
      upstream.counters.clear();
      expect((await broker.fetch('local', 'alice', '/busy?times=1', { method: 'POST', body: '{}' })).status).toBe(429);
      expect(upstream.counters.get('/api/busy')).toBe(1);
    });
  });

  describe('an upstream that misbehaves', () => {
    it('times out waiting for the first byte', async () => {
      const err = await broker.fetch('local', 'alice', '/hang').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamFailed);
      expect(err).toMatchObject({ code: 'upstream_timeout', phase: 'first_byte', status: 504 });
    });

    it('reports a reset connection', async () => {
      await expect(broker.fetch('local', 'alice', '/reset')).rejects.toMatchObject({ code: 'upstream_unreachable', status: 502 });
    });

    it('fails the body stream when the upstream stalls mid-body', async () => {
      const response = await broker.fetch('local', 'alice', '/stall-body');
      expect(response.status).toBe(200);
      await expect(response.text()).rejects.toThrow();
    });

    it('reports an upstream that is not listening', async () => {
      await broker.putService({ id: 'local', apiBaseUrls: ['http://localhost:1/api'] });
      try {
        await expect(broker.fetch('local', 'alice', '/x')).rejects.toMatchObject({ code: 'upstream_unreachable' });
      } finally {
        await broker.putService({ id: 'local', apiBaseUrls: [base] });
      }
    });
  });
});

describe('broker.fetch on PostgreSQL', () => {
  it('reads the service (a named statement) and the identity at once, the service refused first, an edit seen next', async () => {
    const pg = await startTestBroker(server, { kind: 'postgres' });
    try {
      await pg.broker.putService({ id: 'local', apiBaseUrls: [base] });
      await authorizeUser(pg.broker, server, 'pat');
      expect((await (await pg.broker.fetch('local', 'pat', '/x')).json()).path).toBe('/api/x');
      await pg.broker.putService({ id: 'local', apiBaseUrls: [`${upstream.origin}/other`] });
      expect((await (await pg.broker.fetch('local', 'pat', '/x')).json()).path).toBe('/other/x');
      // An unknown service is what is reported, even with an identity that would not be found either.
      expect(await code(pg.broker.fetch('nothing', 'nobody', '/x'))).toBe('service_not_found');
      expect(await code(pg.broker.fetch('local', 'nobody', '/x'))).toBe('identity_not_found');
    } finally {
      await pg.close();
    }
  });
});
