import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing } from '@everyauth/core';
import { createApiKey, startServer } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../../core/test/support/auth-server.js';
import { APP_ORIGIN, hostedFlow, startTestServer, type TestServer } from '../support/server.js';

/**
 * The server's own rules of the road (issue 16, item 4): answers that carry a token or secret are
 * never cached, scopes mean what they say, the auth scheme is case-insensitive, an API key is
 * checked whole, a slow sender is
 * cut off, and a relative finishedUrl (which would land on this server) is refused.
 */

let as: AuthServer;
let t: TestServer;
let connectKey: string;
const json = async (r: Response) => (await r.json()) as any;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  t = await startTestServer(as, { server: { requestTimeoutMs: 1_000, apiKeyRateLimit: false } });
  connectKey = (await createApiKey(t.store, { name: 'connector', scopes: ['connect'] })).key;
  const done = await hostedFlow(t, as, { userId: 'cache', finishedUrl: `${APP_ORIGIN}/done` });
  expect(done.status).toBe(303);
});
afterAll(async () => {
  await t?.close();
  await as?.close();
});

const expectNoStore = (r: Response, what: string) => {
  expect(r.headers.get('cache-control'), what).toBe('no-store');
  expect(r.headers.get('pragma'), what).toBe('no-cache');
};

describe('no cache keeps a token or a secret (RFC 6749 §5.1)', () => {
  it('token routes, by user and by identity id, and their errors', async () => {
    const byUser = await t.request('/v1/services/local/token?userId=cache', { key: t.readerKey });
    expect(byUser.status).toBe(200);
    expectNoStore(byUser, 'token by user');
    const { identityId } = await json(byUser);
    const byId = await t.request(`/v1/services/local/identities/${identityId}/token`, { key: t.readerKey });
    expect(byId.status).toBe(200);
    expectNoStore(byId, 'token by id');
    const missing = await t.request('/v1/services/local/token?userId=nobody', { key: t.readerKey });
    expect(missing.status).toBe(404);
    expectNoStore(missing, 'a 404 from a token route');
  });

  it('API-key creation, webhook creation and session links', async () => {
    const key = await t.request('/v1/api-keys', { method: 'POST', json: { name: 'cached?', scopes: ['tokens:read'] } });
    expect(key.status).toBe(201);
    expectNoStore(key, 'API key creation');
    const hook = await t.request('/v1/webhooks', { method: 'POST', json: { url: 'https://hooks.example/x' } });
    expect(hook.status).toBe(201);
    expect(await json(hook)).toHaveProperty('secret');
    expectNoStore(hook, 'webhook creation');
    const session = await t.request('/v1/sessions', { method: 'POST', json: { serviceId: 'local', userId: 'u' } });
    expect(session.status).toBe(201);
    expectNoStore(session, 'session link');
  });
});

describe('scopes mean what they say', () => {
  const begin = { serviceId: 'local', userId: 'scoped', finishedUrl: `${APP_ORIGIN}/done` };

  it('a tokens:read key reads tokens but cannot start or complete an authorization', async () => {
    for (const [path, body] of [
      ['/v1/sessions', begin],
      ['/v1/authorizations', begin],
      ['/v1/authorizations/complete', { serviceId: 'local', query: 'code=x&state=y' }],
    ] as const) {
      const r = await t.request(path, { method: 'POST', key: t.readerKey, json: body });
      expect(r.status, path).toBe(403);
      expect(await json(r), path).toMatchObject({ error: 'forbidden', message: expect.stringContaining('"connect" scope') });
    }
  });

  it('a connect key starts authorizations but reads no token', async () => {
    expect((await t.request('/v1/sessions', { method: 'POST', key: connectKey, json: begin })).status).toBe(201);
    expect((await t.request('/v1/authorizations', { method: 'POST', key: connectKey, json: begin })).status).toBe(201);
    expect((await t.request('/v1/services/local/token?userId=cache', { key: connectKey })).status).toBe(403);
  });

  it('the OpenAPI document names the scope of each operation; the hosted routes need none', async () => {
    const doc = await json(await t.request('/v1/openapi.json', { key: t.readerKey }));
    expect(doc.paths['/v1/sessions'].post.description).toContain('`connect` scope');
    expect(doc.paths['/v1/services/{serviceId}/token'].get.description).toContain('`tokens:read` scope');
    expect(doc.paths['/v1/api-keys'].post.description).toContain('`admin` scope');
    expect(doc.paths['/v1/api-keys'].post.requestBody.content['application/json'].schema.properties.scopes.items.enum).toEqual([
      'admin',
      'tokens:read',
      'connect',
      'proxy',
    ]);
    expect(doc.paths['/v1/sessions/start'].get.security).toEqual([]);
  });
});

describe('the auth scheme is case-insensitive (RFC 9110 §11.1)', () => {
  it('accepts bearer, BEARER and extra spaces; still refuses other schemes', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr', 'Bearer  ']) {
      const r = await t.request('/v1/services', { key: null, headers: { authorization: `${scheme} ${t.readerKey}` } });
      expect(r.status, scheme).toBe(200);
    }
    const basic = await t.request('/v1/services', { key: null, headers: { authorization: `Basic ${t.readerKey}` } });
    expect(basic.status).toBe(401);
    const glued = await t.request('/v1/services', { key: null, headers: { authorization: `bearer${t.readerKey}` } });
    expect(glued.status).toBe(401);
  });
});

describe('an API key is its whole secret', () => {
  it("refuses a key whose id is known but whose secret differs anywhere, while the id's row is cached", async () => {
    expect((await t.request('/v1/services', { key: t.readerKey })).status).toBe(200); // the row is cached now
    const secretStart = 'ea_'.length + 16 + 1;
    for (const at of [secretStart, secretStart + 21, t.readerKey.length - 1]) {
      const altered = t.readerKey.slice(0, at) + (t.readerKey[at] === 'A' ? 'B' : 'A') + t.readerKey.slice(at + 1);
      const r = await t.request('/v1/services', { key: altered });
      expect(r.status, `changed at ${at}`).toBe(401);
      expect(await json(r)).toMatchObject({ error: 'unauthorized' });
    }
    expect((await t.request('/v1/services', { key: t.readerKey })).status).toBe(200);
  });
});

/** Opens a raw connection, writes `data`, and resolves with what came back and when the server closed it. */
function slowSender(data: string, server = t.url): Promise<{ answer: string; closedAfterMs: number }> {
  const url = new URL(server);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answer = '';
    const socket = connect(Number(url.port), url.hostname, () => socket.write(data));
    socket.on('data', (d) => (answer += d));
    socket.on('error', reject);
    socket.on('close', () => resolve({ answer, closedAfterMs: Date.now() - started }));
    // The bound of the test: a server that never cuts the sender off fails here, not by hanging.
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server still held the connection after 8 s; it had answered ${JSON.stringify(answer)}`));
    }, 8_000).unref();
  });
}

describe('slow senders are cut off', () => {
  it('5 of a declared 500 body bytes: 408 and the connection closed', async () => {
    const head = `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.adminKey}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"ser`;
    const { answer } = await slowSender(head);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('headers that never end: the connection closed', async () => {
    const { answer } = await slowSender('GET /v1/services HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(answer === '' || answer.startsWith('HTTP/1.1 408'), answer).toBe(true);
  });

  it('EVERYAUTH_REQUEST_TIMEOUT_MS sets the budget of a started server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'everyauth-timeout-'));
    const env = { EVERYAUTH_MASTER_KEY: JSON.stringify(createKeyRing()), EVERYAUTH_REQUEST_TIMEOUT_MS: '1000' };
    const running = await startServer({ port: 0, store: join(dir, 'everyauth.db'), env, logLevel: 'silent', sandbox: false });
    try {
      // Headers that never end: with the default 10 s budget this would outlast the test's 8 s bound.
      const { answer, closedAfterMs } = await slowSender('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ', running.url);
      expect(answer === '' || answer.startsWith('HTTP/1.1 408'), answer).toBe(true);
      expect(closedAfterMs).toBeLessThan(5_000);
    } finally {
      await running.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the default budget is 10 s for the headers, then the body's own (Node's whole-request timeout would cut proxied uploads)", async () => {
    const plain = await startTestServer(as);
    try {
      expect(plain.app.server.requestTimeout).toBe(0);
      expect(plain.app.server.headersTimeout).toBe(10_000);
    } finally {
      await plain.close();
    }
  });
});

describe('finishedUrl in server mode', () => {
  it('a relative finishedUrl is refused, asking for an absolute URL on an allowed origin', async () => {
    for (const path of ['/v1/sessions', '/v1/authorizations']) {
      for (const finishedUrl of ['/done', 'done', '?x=1']) {
        const r = await t.request(path, { method: 'POST', json: { serviceId: 'local', userId: 'rel', finishedUrl } });
        expect(r.status, `${path} ${finishedUrl}`).toBe(400);
        const body = await json(r);
        expect(body).toMatchObject({ error: 'invalid_input', field: 'finishedUrl' });
        expect(body.message).toMatch(/absolute URL on an allowed origin/);
      }
    }
    const ok = await t.request('/v1/sessions', {
      method: 'POST',
      json: { serviceId: 'local', userId: 'rel', finishedUrl: `${APP_ORIGIN}/x` },
    });
    expect(ok.status).toBe(201);
  });
});
