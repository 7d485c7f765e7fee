import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverLogger } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../../core/test/support/auth-server.js';
import { CLIENT_SECRET } from '../../../core/test/support/broker.js';
import { captureLogs, expectNoSecrets } from '../../../core/test/security/support.js';
import { APP_ORIGIN, hostedFlow, startTestServer, type TestServer } from '../support/server.js';

/**
 * The server's doors under attack, on SQLite and PostgreSQL: fuzzed API inputs (never a 500),
 * oversized and malformed bodies and headers, SQL metacharacters in every filter, and the
 * RFC 9700 attacks on the hosted callback. Every log line of the server and its broker is kept
 * and scanned for secrets at the end.
 */

let as: AuthServer;
beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
});
afterAll(() => as?.close());

/** Ids with SQL and LIKE metacharacters, stored through the hosted flow and then used as filters. */
const NASTY = ["' OR 1=1 --", '%', '_', '\\', "x'); DROP TABLE identities; --", '用户👩‍💻'];

describe.each(['sqlite', 'postgres'] as const)('on %s', (kind) => {
  let t: TestServer;
  const serverLines: string[] = [];
  const brokerLogs = captureLogs();
  const secrets = new Set<string>([CLIENT_SECRET]);

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        serverLines.push(chunk.toString('utf8'));
        done();
      },
    });
    t = await startTestServer(as, {
      kind,
      server: { bodyLimit: 16 * 1024, apiKeyRateLimit: false, logger: serverLogger('trace', sink) },
      broker: { logger: brokerLogs.logger },
    });
    secrets.add(t.adminKey);
    secrets.add(t.readerKey);
    for (const [i, id] of NASTY.entries()) {
      const done = await hostedFlow(
        t,
        as,
        { userId: id, tenantId: id, tags: { v: id, i: String(i) }, finishedUrl: `${APP_ORIGIN}/done` },
        { login: `nasty-${i}` },
      );
      expect(done.status, `${id}: ${done.body}`).toBe(303);
    }
  });
  afterAll(async () => {
    expectNoSecrets(serverLines.join('') + brokerLogs.text(), secrets);
    await t?.close();
  });

  const json = async (r: Response) => (await r.json()) as any;
  const count = async () => (await json(await t.request('/v1/identities?count=1000'))).items.length as number;

  describe('SQL metacharacters in every filter match only literally', () => {
    it.each(NASTY.map((v) => [v]))('%s', async (value) => {
      const q = encodeURIComponent(value);
      for (const path of [
        `/v1/identities?userId=${q}`,
        `/v1/identities?tenantId=${q}`,
        `/v1/identities?tag=${encodeURIComponent(`v=${value}`)}`,
        `/v1/identities?serviceId=local&userId=${q}&tenantId=${q}`,
      ]) {
        const r = await t.request(path);
        expect(r.status, path).toBe(200);
        expect(
          (await json(r)).items.map((i: any) => i.userId),
          path,
        ).toEqual([value]);
      }
      const one = await t.request(`/v1/services/local/identity?userId=${q}&tenantId=${q}`);
      expect((await json(one)).userId).toBe(value);
      const token = await t.request(`/v1/services/local/token?userId=${q}`);
      expect(token.status).toBe(200);
      secrets.add((await json(token)).accessToken);
    });

    it('probes that would match everything in SQL or LIKE match nothing', async () => {
      for (const probe of ["' OR '1'='1", '%%', '_%', "') OR ('a'='a", '*', '.*']) {
        const q = encodeURIComponent(probe);
        for (const path of [
          `/v1/identities?userId=${q}`,
          `/v1/identities?tenantId=${q}`,
          `/v1/identities?tag=${encodeURIComponent(`v=${probe}`)}`,
          `/v1/events?identityId=${q}`,
        ]) {
          const r = await t.request(path);
          expect(r.status, path).toBeLessThan(500);
          if (r.status === 200) {
            const body = await json(r);
            expect(Array.isArray(body) ? body : body.items, path).toEqual([]);
          }
        }
        expect((await t.request(`/v1/services/local/token?userId=${q}`)).status).toBe(404);
        expect((await t.request(`/v1/services/${q}/token?userId=x`)).status).toBe(400);
        expect((await t.request(`/v1/identities?status=${q}`)).status).toBe(400);
        expect((await t.request(`/v1/identities?next=${q}`)).status).toBe(400);
        expect((await t.request(`/v1/identities?count=${q}`)).status).toBe(400);
      }
      expect(await count()).toBe(NASTY.length);
    });

    it('a delete filtered by a metacharacter deletes the literal match only', async () => {
      const r = await t.request(`/v1/services/local/identities?userId=${encodeURIComponent('%')}`, { method: 'DELETE' });
      expect(r.status).toBeLessThan(300);
      expect(await count()).toBe(NASTY.length - 1);
    });
  });

  describe('malformed and oversized requests', () => {
    it('invalid percent-encoding in the query is read leniently, never a 500', async () => {
      const r = await t.request('/v1/identities?userId=%E0%A4%A');
      expect(r.status).toBe(200);
      expect((await json(r)).items).toEqual([]);
    });

    it.each([
      ['NUL in a user id', '/v1/services/local/token?userId=a%00b', 400],
      // Encoded surrogate halves are invalid UTF-8: they decode to U+FFFD, never to a lone surrogate.
      ['an encoded surrogate half in a user id', '/v1/services/local/token?userId=%ED%A0%80', 404],
      ['a control character in a tenant filter', '/v1/identities?tenantId=a%0Ab', 400],
      ['NUL in an identity id', '/v1/identities/%00', 400],
      ['NUL in an identity id to delete', '/v1/identities/idn_%00', 400],
      ['invalid percent-encoding in the path', '/v1/services/%E0%A4%A/token?userId=x', 400],
      ['a 300-character path parameter', `/v1/services/${'a'.repeat(300)}/token?userId=x`, 404],
      ['a 5,000-character user id', `/v1/services/local/token?userId=${'u'.repeat(5000)}`, 400],
      ['a tag without "="', '/v1/identities?tag=novalue', 400],
      ['a repeated userId', '/v1/identities?userId=a&userId=b', 400],
      ['count as an array', '/v1/identities?count=1&count=2', 400],
      ['an unknown identity id', '/v1/identities/idn_%27%20OR%201%3D1', 404],
    ])('%s → a typed 4xx', async (_name, path, status) => {
      const r = await t.request(path);
      expect(r.status, await r.clone().text()).toBeLessThan(500);
      expect(r.status).toBeGreaterThanOrEqual(400);
      if (status !== 404) expect(r.status).toBe(status);
      const body = await r.text();
      if (body) expect(JSON.parse(body)).toHaveProperty('error');
    });

    it('bodies: too large, not JSON, wrong content type, deeply nested, __proto__, wrong types', async () => {
      const post = (body: string, contentType = 'application/json') =>
        t.request('/v1/sessions', { method: 'POST', body, headers: { 'content-type': contentType } });
      const cases: [string, Promise<Response>, number][] = [
        ['over the body limit', post(JSON.stringify({ serviceId: 'local', userId: 'x'.repeat(20_000) })), 413],
        ['broken JSON', post('{"serviceId": "local", "userId": '), 400],
        ['JSON null', post('null'), 400],
        ['a JSON array', post('["local"]'), 400],
        ['form-encoded', post('serviceId=local&userId=u', 'application/x-www-form-urlencoded'), 415],
        ['text/plain', post('hello', 'text/plain'), 400],
        ['deeply nested', post(`{"serviceId":"local","userId":"u","tags":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}`), 400],
        ['__proto__ key', post('{"serviceId":"local","userId":"u","__proto__":{"admin":true}}'), 400],
        ['constructor.prototype key', post('{"serviceId":"local","userId":"u","constructor":{"prototype":{"admin":true}}}'), 400],
        // Fastify's schema coerces a number to the string "5": a valid id, not an injection.
        ['userId as a number', post('{"serviceId":"local","userId":5}'), 201],
        ['tags with an object value', post('{"serviceId":"local","userId":"u","tags":{"a":{"b":1}}}'), 400],
        ['a foreign finishedUrl', post('{"serviceId":"local","userId":"u","finishedUrl":"https://evil.example"}'), 400],
        ['a dot-segment finishedUrl', post('{"serviceId":"local","userId":"u","finishedUrl":"/.//evil.example"}'), 400],
        ['NUL in userId', post('{"serviceId":"local","userId":"a\\u0000b"}'), 400],
      ];
      for (const [name, response, status] of cases) {
        const r = await response;
        expect(r.status, `${name}: ${await r.clone().text()}`).toBe(status);
        if (status !== 201) expect(await json(r), name).toHaveProperty('error');
      }
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
    });

    it('headers: an oversized header gets 431, a malformed Authorization 401, never a hang', async () => {
      const big = await fetch(`${t.url}/v1/identities`, {
        headers: { authorization: `Bearer ${t.adminKey}`, 'x-pad': 'p'.repeat(40_000) },
        signal: AbortSignal.timeout(5000),
      });
      expect(big.status).toBe(431);
      for (const authorization of [
        'Bearer',
        'Bearer ',
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `Bearer ${'k'.repeat(8000)}`,
        `Bearer ${t.adminKey}\u00e9`,
      ]) {
        const r = await fetch(`${t.url}/v1/identities`, { headers: { authorization }, signal: AbortSignal.timeout(5000) }).catch(
          (e: Error) => e,
        );
        // fetch itself refuses a header that is not ByteString; otherwise the server says 401.
        if (r instanceof Error) continue;
        expect(r.status, authorization.slice(0, 20)).toBe(401);
      }
    });
  });

  describe('property: fuzzed API inputs never get a 500', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.constantFrom("' OR 1=1 --", '%', '_', '\\', '\u0000', 'idn_', '../', '%00', 'true', '-1', '1e9'),
    );
    const ROUTES = [
      (a: string, b: string) => `/v1/identities?userId=${encodeURIComponent(a)}&tenantId=${encodeURIComponent(b)}`,
      (a: string, b: string) => `/v1/identities?tag=${encodeURIComponent(`${a}=${b}`)}&status=${encodeURIComponent(b)}`,
      (a: string, b: string) => `/v1/identities?next=${encodeURIComponent(a)}&count=${encodeURIComponent(b)}`,
      (a: string) => `/v1/identities/${encodeURIComponent(a)}`,
      (a: string, b: string) => `/v1/services/${encodeURIComponent(a)}/token?userId=${encodeURIComponent(b)}`,
      (a: string, b: string) =>
        `/v1/services/local/token?userId=${encodeURIComponent(a)}&tag=${encodeURIComponent(b)}&force=${encodeURIComponent(b)}`,
      (a: string, b: string) => `/v1/services/local/identity?tenantId=${encodeURIComponent(a)}&tag=${encodeURIComponent(`v=${b}`)}`,
      (a: string, b: string) => `/v1/services/local/identities/${encodeURIComponent(a)}/token?force=${encodeURIComponent(b)}`,
      (a: string, b: string) => `/v1/events?after=${encodeURIComponent(a)}&identityId=${encodeURIComponent(b)}`,
      (a: string) => `/v1/providers?search=${encodeURIComponent(a)}`,
      (a: string) => `/v1/providers/${encodeURIComponent(a)}`,
      (a: string, b: string) => `/local/callback?state=${encodeURIComponent(a)}&code=${encodeURIComponent(b)}`,
      (a: string) => `/v1/sessions/start?t=${encodeURIComponent(a)}`,
    ];

    it('GET routes with arbitrary parameters', async () => {
      const before = await count();
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: ROUTES.length - 1 }), text, text, async (route, a, b) => {
          const path = ROUTES[route]!(a, b);
          const r = await t.request(path, { signal: AbortSignal.timeout(5000) });
          const body = await r.text();
          expect(r.status, `${path} → ${body.slice(0, 200)}`).toBeLessThan(500);
        }),
        { numRuns: 200 },
      );
      expect(await count()).toBe(before);
    });

    it('POST /v1/sessions with arbitrary bodies: 201 or a typed 4xx, never 500', async () => {
      const anyJson = fc.oneof(
        text,
        fc.integer(),
        fc.constant(null),
        fc.array(text, { maxLength: 2 }),
        fc.dictionary(text, text, { maxKeys: 3 }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.record(
            { serviceId: fc.oneof(fc.constant('local'), text), userId: anyJson, tenantId: anyJson, tags: anyJson, finishedUrl: anyJson },
            { requiredKeys: ['serviceId'] },
          ),
          async (body) => {
            const r = await t.request('/v1/sessions', { method: 'POST', json: body, signal: AbortSignal.timeout(5000) });
            const text = await r.text();
            expect(r.status, text.slice(0, 200)).toBeLessThan(500);
            if (r.status !== 201) expect(JSON.parse(text)).toHaveProperty('error');
          },
        ),
        { numRuns: 150 },
      );
    });
  });

  describe('hosted callback attacks', () => {
    it('no state, a foreign state, another browser (no cookie), a replay: each refused, nothing stored', async () => {
      const before = await count();
      const noState = await fetch(`${t.url}/local/callback?code=abc&iss=${encodeURIComponent(as.issuer)}`, { redirect: 'manual' });
      expect(noState.status).toBe(400);
      const foreign = await fetch(`${t.url}/local/callback?code=abc&state=${'A'.repeat(43)}`, { redirect: 'manual' });
      expect(foreign.status).toBe(400);
      const otherBrowser = await hostedFlow(t, as, { userId: 'hosted-csrf', finishedUrl: `${APP_ORIGIN}/done` }, { dropCookie: true });
      expect(otherBrowser.status).toBe(303);
      expect(new URL(otherBrowser.location!, t.url).searchParams.get('error_description')).toMatch(/different browser/);
      expect(await count()).toBe(before);
    });

    it('a replayed callback, an iss mix-up and an injected code are refused', async () => {
      const session = await json(
        await t.request('/v1/sessions', {
          method: 'POST',
          json: { serviceId: 'local', userId: 'hosted-replay', finishedUrl: `${APP_ORIGIN}/done` },
        }),
      );
      const start = await fetch(session.url, { redirect: 'manual' });
      const cookie = start.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      const callback = await as.authorize(start.headers.get('location')!, { login: 'hosted-replay' });
      secrets.add(callback.searchParams.get('code')!);
      secrets.add(callback.searchParams.get('state')!);
      secrets.add(new URL(session.url).searchParams.get('t')!);

      const mixedUp = new URL(callback);
      mixedUp.searchParams.set('iss', 'https://evil.example');
      const mix = await fetch(mixedUp, { redirect: 'manual', headers: { cookie } });
      expect(new URL(mix.headers.get('location')!, t.url).searchParams.get('error_description')).toMatch(/RFC 9207/);
      // The state is used up by the refused attempt: the genuine callback after it is refused too.
      const replay = await fetch(callback, { redirect: 'manual', headers: { cookie } });
      expect(replay.status).toBe(400);
      expect(await replay.text()).toMatch(/already used/);
      expect((await t.request('/v1/identities?userId=hosted-replay')).status).toBe(200);
      expect((await json(await t.request('/v1/identities?userId=hosted-replay'))).items).toEqual([]);
    });

    it('an altered start link is refused; the callback says Referrer-Policy: no-referrer and no-store', async () => {
      const session = await json(await t.request('/v1/sessions', { method: 'POST', json: { serviceId: 'local', userId: 'hosted-link' } }));
      const link = new URL(session.url);
      const sealed = link.searchParams.get('t')!;
      link.searchParams.set('t', `${sealed.slice(0, -2)}${sealed.endsWith('A') ? 'B' : 'A'}A`);
      const altered = await fetch(link, { redirect: 'manual' });
      expect(altered.status).toBe(400);
      expect(altered.headers.get('set-cookie')).toBeNull();
      const cb = await fetch(`${t.url}/local/callback?state=x&code=y`, { redirect: 'manual' });
      expect(cb.headers.get('referrer-policy')).toBe('no-referrer');
      expect(cb.headers.get('cache-control')).toMatch(/no-store/);
    });
  });
});
