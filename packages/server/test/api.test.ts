import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import fastJson from 'fast-json-stringify';
import type { IdentityFilter } from '@everyauth/core';
import { brokerEvent, identitySummary } from '../src/schemas.js';
import { APP_ORIGIN, hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  t = await startTestServer(as, { server: { bodyLimit: 16 * 1024 } });
});
afterAll(async () => {
  await t?.close();
  await as?.close();
});

const json = async (r: Response) => (await r.json()) as any;

describe('API keys', () => {
  it('refuses a missing key with 401 and a WWW-Authenticate challenge', async () => {
    const r = await t.request('/v1/services', { key: null });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await json(r)).toMatchObject({ error: 'unauthorized' });
  });

  it('refuses malformed, unknown and wrong-secret keys alike', async () => {
    const [, id] = /^ea_([a-z0-9]+)_/.exec(t.adminKey)!;
    const wrongSecret = `ea_${id}_${'A'.repeat(43)}`;
    for (const key of ['nonsense', `ea_${'0'.repeat(16)}_${'B'.repeat(43)}`, wrongSecret, `${t.adminKey}x`]) {
      const r = await t.request('/v1/services', { key });
      expect(r.status, key).toBe(401);
      const body = await json(r);
      expect(body.error).toBe('unauthorized');
      expect(JSON.stringify(body)).not.toContain(key);
    }
  });

  it('gives 403 to a tokens:read key on admin routes, and lets it read', async () => {
    const put = await t.request('/v1/services/other', {
      method: 'PUT',
      key: t.readerKey,
      json: { providerId: 'local-idp', clientId: 'x' },
    });
    expect(put.status).toBe(403);
    expect(await json(put)).toMatchObject({ error: 'forbidden' });
    expect((await t.request('/v1/api-keys', { key: t.readerKey })).status).toBe(403);
    expect((await t.request('/v1/services', { key: t.readerKey })).status).toBe(200);
  });

  it('creates, lists and deletes keys over the API; a deleted key stops working at once on this replica', async () => {
    const created = await t.request('/v1/api-keys', { method: 'POST', json: { name: 'ci', scopes: ['tokens:read'] } });
    expect(created.status).toBe(201);
    const { id, key } = await json(created);
    expect(key).toMatch(/^ea_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    expect((await t.request('/v1/services', { key })).status).toBe(200);
    const listed = await json(await t.request('/v1/api-keys'));
    expect(listed.find((k: any) => k.id === id)).toMatchObject({ name: 'ci', scopes: ['tokens:read'] });
    expect(JSON.stringify(listed)).not.toContain(key.slice('ea_'.length + 16 + 1)); // the secret part
    expect((await t.request(`/v1/api-keys/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.request('/v1/services', { key })).status).toBe(401);
  });

  it('leaves /health, /metrics and the hosted routes open', async () => {
    const health = await t.request('/health', { key: null });
    expect(health.status).toBe(200);
    expect(await json(health)).toMatchObject({ status: 'ok', store: 'sqlite' });
    const metrics = await t.request('/metrics', { key: null });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('everyauth_http_requests_total');
  });
});

describe('bad input', () => {
  it('names the field a schema rejects', async () => {
    const r = await t.request('/v1/services/svc-a', {
      method: 'PUT',
      json: { providerId: 'local-idp', clientId: 'c', scopes: { not: 'a list' } },
    });
    expect(r.status).toBe(400);
    expect(await json(r)).toMatchObject({ error: 'invalid_input', field: 'scopes', message: expect.stringContaining('body.scopes') });
    const missing = await t.request('/v1/sessions', { method: 'POST', json: { serviceId: 'local' } });
    expect(await json(missing)).toMatchObject({ error: 'invalid_input', field: 'userId', message: 'body.userId is required' });
    const unknown = await t.request('/v1/sessions', { method: 'POST', json: { serviceId: 'local', userId: 'u', usrId: 'typo' } });
    expect(await json(unknown)).toMatchObject({ error: 'invalid_input', field: 'usrId' });
  });

  it('answers 413 to an oversized body and 400 to malformed JSON', async () => {
    const big = await t.request('/v1/providers/big', { method: 'PUT', json: { id: 'big', name: 'x'.repeat(20_000) } });
    expect(big.status).toBe(413);
    expect(await json(big)).toMatchObject({ error: 'payload_too_large' });
    const bad = await t.request('/v1/sessions', {
      method: 'POST',
      body: '{"serviceId": "local",',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(await json(bad)).toMatchObject({ error: 'invalid_json' });
    const xml = await t.request('/v1/sessions', { method: 'POST', body: '<serviceId/>', headers: { 'content-type': 'application/xml' } });
    expect(xml.status).toBe(415);
    const text = await t.request('/v1/sessions', { method: 'POST', body: 'serviceId=local', headers: { 'content-type': 'text/plain' } });
    expect(await json(text)).toMatchObject({ error: 'invalid_input', message: 'body must be object' });
  });

  it('maps core errors to their status: unknown service 404, bad finishedUrl 400', async () => {
    const r = await t.request('/v1/services/nope');
    expect(r.status).toBe(404);
    expect(await json(r)).toMatchObject({ error: 'service_not_found', type: 'NotFound', kind: 'service', id: 'nope' });
    const open = await t.request('/v1/sessions', {
      method: 'POST',
      json: { serviceId: 'local', userId: 'u', finishedUrl: 'https://evil.example/x' },
    });
    expect(open.status).toBe(400);
    expect(await json(open)).toMatchObject({ error: 'invalid_input', field: 'finishedUrl' });
  });
});

describe('hosted flow, identities and tokens', () => {
  it('runs the whole flow and redirects to finishedUrl with the ids', async () => {
    const done = await hostedFlow(t, as, { userId: 'alice', tenantId: 'acme', tags: { env: 'prod' }, finishedUrl: `${APP_ORIGIN}/done` });
    expect(done.status).toBe(303);
    const to = new URL(done.location!, t.url);
    expect(to.pathname).toBe('/done');
    expect(Object.fromEntries(to.searchParams)).toEqual({ userId: 'alice', tenantId: 'acme', serviceId: 'local' });
  });

  it('refuses a callback from another browser (no binding cookie) and says so at finishedUrl', async () => {
    const done = await hostedFlow(t, as, { userId: 'mallory', finishedUrl: `${APP_ORIGIN}/done` }, { dropCookie: true });
    expect(done.status).toBe(303);
    const to = new URL(done.location!, t.url);
    expect(to.searchParams.get('error')).toBe('invalid_request');
    expect(to.searchParams.get('error_description')).toMatch(/different browser/);
    expect((await json(await t.request('/v1/identities?userId=mallory'))).items).toEqual([]);
  });

  it('refuses a tampered start link', async () => {
    const r = await fetch(`${t.url}/v1/sessions/start?t=ea1.x.y.z`, { redirect: 'manual' });
    expect(r.status).toBe(400);
  });

  it('lists identities with filters and cursor paging, and gets one', async () => {
    await hostedFlow(t, as, { userId: 'bob', tags: { env: 'prod', team: 'b' } });
    await hostedFlow(t, as, { userId: 'carol', tags: { env: 'dev' } });
    const prod = await json(await t.request('/v1/identities?serviceId=local&tag=env=prod'));
    expect(prod.items.map((i: any) => i.userId).sort()).toEqual(['alice', 'bob']);
    const both = await json(await t.request('/v1/identities?tag=env=prod&tag=team=b'));
    expect(both.items.map((i: any) => i.userId)).toEqual(['bob']);
    const first = await json(await t.request('/v1/identities?count=2'));
    expect(first.items).toHaveLength(2);
    const second = await json(await t.request(`/v1/identities?count=2&next=${first.next}`));
    expect(second.next).toBeUndefined();
    expect([...first.items, ...second.items].map((i: any) => i.userId).sort()).toEqual(['alice', 'bob', 'carol']);
    const one = await json(await t.request(`/v1/identities/${first.items[0].id}`));
    expect(one).toMatchObject({ id: first.items[0].id, serviceId: 'local', status: 'active' });
    expect(JSON.stringify(one)).not.toMatch(/accessToken|refresh/i);
  });

  it('writes a page of identities byte for byte as its response schema’s serializer would', async () => {
    const [alice] = (await json(await t.request('/v1/identities?userId=alice'))).items;
    await t.broker.updateIdentity(alice.id, { metadata: { crm: 'A "1"\n\u2028' }, tags: { env: 'prod', note: 'é\\' } });
    const bySchema = fastJson({
      type: 'object',
      properties: { items: { type: 'array', items: identitySummary }, next: { type: 'string' } },
    });
    const cases: [string, IdentityFilter, { count?: number }][] = [
      ['?count=2', {}, { count: 2 }],
      ['?userId=alice', { userId: 'alice' }, {}],
      ['?tag=env=prod', { tags: { env: 'prod' } }, {}],
    ];
    for (const [query, filter, page] of cases) {
      const body = await (await t.request(`/v1/identities${query}`)).text();
      expect(body, query).toBe(bySchema(await t.broker.listIdentities(undefined, filter, page)));
    }
  });

  it('writes a page of events byte for byte as its response schema’s serializer would', async () => {
    const [alice] = (await json(await t.request('/v1/identities?userId=alice'))).items;
    await t.broker.updateIdentity(alice.id, { tags: { env: 'prod', note: 'a "q" é\\' } });
    const bySchema = fastJson({ type: 'array', items: brokerEvent });
    for (const query of ['', `?identityId=${alice.id}`, '?count=2']) {
      const body = await (await t.request(`/v1/events${query}`)).text();
      const options = Object.fromEntries(new URLSearchParams(query));
      const events = await t.broker.listEvents({ ...options, count: options.count ? Number(options.count) : undefined });
      expect(events.length, query).toBeGreaterThan(0);
      expect(body, query).toBe(bySchema(events));
    }
  });

  it('hands out the fresh token by identity id and by user, with the tokens:read key', async () => {
    const bob = await json(await t.request('/v1/services/local/identity?userId=bob'));
    const byId = await json(await t.request(`/v1/services/local/identities/${bob.id}/token`, { key: t.readerKey }));
    const byUser = await json(await t.request('/v1/services/local/token?userId=bob', { key: t.readerKey }));
    const byTag = await json(await t.request('/v1/services/local/token?tag=team=b', { key: t.readerKey }));
    expect(byId.accessToken).toBeTruthy();
    expect(byUser).toEqual(byId);
    expect(byTag.identityId).toBe(bob.id);
    expect(byId).toMatchObject({ identityId: bob.id, userId: 'bob', serviceId: 'local', tags: { env: 'prod', team: 'b' } });
    expect((await as.userinfo(byId.accessToken)).status).not.toBe(401);
    const ambiguous = await t.request('/v1/services/local/token?tag=env=prod');
    expect(ambiguous.status).toBe(409);
    expect(await json(ambiguous)).toMatchObject({ error: 'ambiguous_identity', count: 2 });
    expect((await t.request('/v1/services/local/token?userId=nobody')).status).toBe(404);
  });

  it('answers 409 with the error JSON when the grant is gone', async () => {
    await hostedFlow(t, as, { userId: 'dave' });
    await as.revokeGrantsFor('dave');
    const r = await t.request('/v1/services/local/token?userId=dave&force=true');
    expect(r.status).toBe(409);
    expect(await json(r)).toMatchObject({
      error: 'reauthorization_required',
      type: 'ReauthorizationRequired',
      userId: 'dave',
      serviceId: 'local',
    });
    const events = await json(await t.request('/v1/events'));
    expect(events.map((e: any) => e.type)).toContain('identity.needs_reauth');
  });

  it('deletes an identity, revoking its grant when asked', async () => {
    await hostedFlow(t, as, { userId: 'erin' });
    const erin = await json(await t.request('/v1/services/local/identity?userId=erin'));
    const token = await json(await t.request('/v1/services/local/token?userId=erin'));
    expect((await t.request(`/v1/identities/${erin.id}?revoke=true`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.request(`/v1/identities/${erin.id}`)).status).toBe(404);
    expect((await t.request(`/v1/identities/${erin.id}`, { method: 'DELETE' })).status).toBe(404);
    expect((await as.userinfo(token.accessToken)).status).toBe(401);
  });
});

describe('injection attempts in filters and tags', () => {
  const attempts = ["' OR '1'='1", "x'; DROP TABLE identities; --", '%', '_', '\\', '") OR 1=1 --'];

  it('treats them as plain values: nothing matches, nothing breaks', async () => {
    const before = (await json(await t.request('/v1/identities'))).items.length;
    for (const a of attempts) {
      const q = encodeURIComponent(a);
      const byUser = await t.request(`/v1/identities?userId=${q}`);
      expect(byUser.status, a).toBe(200);
      expect((await json(byUser)).items, a).toEqual([]);
      const byTag = await t.request(`/v1/identities?tag=env=${q}`);
      expect((await json(byTag)).items, a).toEqual([]);
      expect((await t.request(`/v1/services/local/token?userId=${q}`)).status, a).toBe(404);
    }
    expect((await json(await t.request('/v1/identities'))).items.length).toBe(before);
  });

  it('rejects tag keys outside the allowed characters, naming the field', async () => {
    const r = await t.request(`/v1/identities?tag=${encodeURIComponent("env' OR 1=1 --=x")}`);
    expect(r.status).toBe(400);
    expect(await json(r)).toMatchObject({ error: 'invalid_input', field: expect.stringMatching(/^tag/) });
  });

  it('stores tags with quotes as data when a flow carries them', async () => {
    const tags = { note: 'it\'s "quoted"; DROP TABLE x; --' };
    await hostedFlow(t, as, { userId: 'frank', tags });
    const found = await json(await t.request(`/v1/identities?tag=note=${encodeURIComponent(tags.note)}`));
    expect(found.items.map((i: any) => i.userId)).toEqual(['frank']);
    expect(found.items[0].tags).toEqual(tags);
  });
});

describe('providers', () => {
  it('filters by kind and category and searches ranked, as the CLI and the console do', async () => {
    const mail = await json(await t.request('/v1/providers?kind=api_key&search=mail', { key: t.readerKey }));
    expect(mail.length).toBeGreaterThan(0);
    expect(mail.every((p: { kind: string }) => p.kind === 'api_key')).toBe(true);
    expect(mail[0]).toMatchObject({ id: expect.stringContaining('mail'), custom: false, category: expect.any(String) });
    const ai = await json(await t.request('/v1/providers?category=ai', { key: t.readerKey }));
    expect(ai.map((p: { id: string }) => p.id)).toEqual(expect.arrayContaining(['openai', 'anthropic', 'mistral']));
    const bad = await t.request('/v1/providers?kind=apikey', { key: t.readerKey });
    expect(bad.status).toBe(400);
  });
});

describe('OpenAPI', () => {
  it('documents every /v1 route with its schemas', async () => {
    const doc = await json(await t.request('/v1/openapi.json', { key: t.readerKey }));
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/services/{serviceId}/token',
      '/v1/services/{serviceId}/identities/{identityId}/token',
      '/v1/identities',
      '/v1/sessions',
      '/v1/providers',
      '/v1/events',
      '/v1/webhooks/{id}/deliveries',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    const tokenParams = doc.paths['/v1/services/{serviceId}/token'].get.parameters.map((p: any) => p.name);
    expect(tokenParams).toEqual(expect.arrayContaining(['serviceId', 'userId', 'tenantId', 'tag', 'force']));
  });
});
