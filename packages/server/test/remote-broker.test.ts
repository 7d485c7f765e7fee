import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AmbiguousIdentity,
  AuthorizationFailed,
  EveryAuthError,
  InvalidInput,
  NotFound,
  ReauthorizationRequired,
  RemoteBroker,
  type Broker,
} from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;
let remote: RemoteBroker;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  t = await startTestServer(as, { services: ['local', 'second'] });
  remote = t.remote();
});
afterAll(async () => {
  await t?.close();
  await as?.close();
});

/** Runs the call on both brokers and returns what each threw, or undefined when one succeeded. */
async function errorsOf(call: (b: Broker) => Promise<unknown>): Promise<[unknown, unknown]> {
  const settle = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: unknown) => err,
    );
  return [await settle(call(t.broker)), await settle(call(remote))];
}

async function remoteAuthorize(userId: string, extra: { tenantId?: string; tags?: Record<string, string> } = {}) {
  const binding = 'b'.repeat(32);
  const started = await remote.beginAuthorization({
    serviceId: 'local',
    userId,
    ...extra,
    browserBinding: binding,
    finishedUrl: 'https://app.example/after',
  });
  expect(new URL(started.url).origin).toBe(as.issuer);
  const callback = await as.authorize(started.url, { login: userId });
  expect(callback.pathname).toBe('/local/callback');
  return remote.completeAuthorization('local', callback.searchParams, { browserBinding: binding });
}

describe('RemoteBroker', () => {
  it('manages providers and services like the local broker', async () => {
    expect((await remote.listProviders()).map((p) => p.id)).toEqual((await t.broker.listProviders()).map((p) => p.id));
    expect((await remote.listProviders({ search: 'local' })).map((p) => p.id)).toContain('local-idp');
    expect(await remote.getProvider('local-idp')).toEqual(await t.broker.getProvider('local-idp'));
    const def = { ...(await remote.getProvider('local-idp')), id: 'copy-idp', name: 'Copy' };
    expect((await remote.putProvider(def)).id).toBe('copy-idp');
    const svc = await remote.putService({ id: 'copy', providerId: 'copy-idp', clientId: 'c', clientSecret: 's', scopes: ['openid'] });
    expect(svc).toEqual(await t.broker.getService('copy'));
    expect(svc).toMatchObject({ hasClientSecret: true, redirectUrl: `${t.url}/copy/callback` });
    expect((await remote.listServices()).map((s) => s.id)).toEqual(['copy', 'local', 'second']);
    expect(await remote.deleteService('copy')).toBe(true);
    expect(await remote.deleteService('copy')).toBe(false);
    expect(await remote.deleteProvider('copy-idp')).toBe(true);
    expect(await remote.deleteProvider('copy-idp')).toBe(false);
  });

  it('runs an authorization with a browser binding and finds the identity', async () => {
    const done = await remoteAuthorize('rita', { tenantId: 't1', tags: { plan: 'pro' } });
    expect(done.finishedUrl).toBe('https://app.example/after?userId=rita&tenantId=t1&serviceId=local');
    expect(done.identity).toMatchObject({ userId: 'rita', tenantId: 't1', tags: { plan: 'pro' }, status: 'active' });
    expect(await remote.findIdentity('local', done.identity.id)).toEqual(done.identity);
    expect(await remote.findIdentity('local', 'rita')).toEqual(done.identity);
    expect(await remote.findIdentity('local', { tags: { plan: 'pro' } })).toEqual(done.identity);
    expect(await remote.findIdentity('second', done.identity.id)).toBeUndefined();
    expect(await remote.findIdentity('local', 'nobody')).toBeUndefined();
    const fresh = await remote.getIdentity('local', 'rita');
    expect(fresh).toEqual(await t.broker.getIdentity('local', 'rita'));
    expect(await remote.getIdentity('local', done.identity.id)).toEqual(fresh);
    const forced = await remote.getIdentity('local', { userId: 'rita', tenantId: 't1' }, { force: true });
    expect(forced!.accessToken).not.toBe(fresh!.accessToken);
    expect(await remote.getIdentity('local', 'nobody')).toBeUndefined();
  });

  it('refuses a completion without the browser binding, like the local broker', async () => {
    const started = await remote.beginAuthorization({ serviceId: 'local', userId: 'sam', browserBinding: 'c'.repeat(32) });
    const callback = await as.authorize(started.url, { login: 'sam' });
    const err = await remote.completeAuthorization('local', callback.searchParams).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorizationFailed);
    expect(err).toMatchObject({ error: 'invalid_request', status: 400 });
    expect((err as Error).message).toMatch(/different browser/);
  });

  it('pages and filters identity listings and deletes by filter', async () => {
    for (const u of ['p1', 'p2', 'p3']) await hostedFlow(t, as, { userId: u, tags: { batch: 'paging' } });
    const first = await remote.listIdentities('local', { tags: { batch: 'paging' } }, { count: 2 });
    expect(first.items).toHaveLength(2);
    const second = await remote.listIdentities('local', { tags: { batch: 'paging' } }, { count: 2, next: first.next });
    expect([...first.items, ...second.items].map((i) => i.userId)).toEqual(['p1', 'p2', 'p3']);
    expect(second.next).toBeUndefined();
    expect(await remote.listIdentities(undefined, { userId: 'p2' })).toEqual(await t.broker.listIdentities(undefined, { userId: 'p2' }));
    expect(await remote.deleteIdentities('local', { userId: 'p1' })).toBe(1);
    expect(await remote.deleteIdentity(first.items[1]!.id)).toBe(true);
    expect(await remote.deleteIdentity(first.items[1]!.id)).toBe(false);
    expect((await remote.listIdentities('local', { tags: { batch: 'paging' } })).items.map((i) => i.userId)).toEqual(['p3']);
    const events = await remote.listEvents({ identityId: first.items[0]!.id });
    expect(events.map((e) => e.type)).toEqual(['identity.created', 'identity.deleted']);
    expect(await remote.listEvents({ count: 3 })).toEqual(await t.broker.listEvents({ count: 3 }));
  });

  it('throws the same typed errors, with the same codes and messages, as the local broker', async () => {
    await hostedFlow(t, as, { userId: 'twin', tenantId: 'a' });
    await hostedFlow(t, as, { userId: 'twin', tenantId: 'b' });
    await hostedFlow(t, as, { userId: 'gone' });
    await as.revokeGrantsFor('gone');
    const cases: [string, (b: Broker) => Promise<unknown>, new (...args: any[]) => EveryAuthError][] = [
      ['unknown service', (b) => b.getService('missing'), NotFound],
      ['unknown provider', (b) => b.getProvider('missing'), NotFound],
      ['bad user id', (b) => b.beginAuthorization({ serviceId: 'local', userId: 'idn_nope' }), InvalidInput],
      [
        'open redirect',
        (b) => b.beginAuthorization({ serviceId: 'local', userId: 'u', finishedUrl: 'https://evil.example/' }),
        InvalidInput,
      ],
      ['ambiguous', (b) => b.getIdentity('local', 'twin'), AmbiguousIdentity],
      ['empty delete filter', (b) => b.deleteIdentities('local', {}), InvalidInput],
      ['grant gone', (b) => b.getIdentity('local', 'gone', { force: true }), ReauthorizationRequired],
      ['built-in provider', (b) => b.deleteProvider('github'), InvalidInput],
    ];
    for (const [name, call, type] of cases) {
      const [local, viaServer] = await errorsOf(call);
      expect(local, name).toBeInstanceOf(type);
      expect(viaServer, name).toBeInstanceOf(type);
      const pick = (e: any) => ({ code: e.code, status: e.status, retryable: e.retryable, message: e.message, json: e.toJSON() });
      if (name === 'grant gone') {
        // The second call finds the identity already marked, so compare the stable parts.
        expect(pick(viaServer).code, name).toBe(pick(local).code);
        expect((viaServer as ReauthorizationRequired).identityId).toBe((local as ReauthorizationRequired).identityId);
      } else {
        expect(pick(viaServer), name).toEqual(pick(local));
      }
    }
  });

  it('reports an unreachable server and a bad key as typed errors', async () => {
    const down = new RemoteBroker({ server: 'http://127.0.0.1:1', apiKey: 'ea_x' });
    await expect(down.listServices()).rejects.toMatchObject({ code: 'server_unavailable', retryable: true });
    const bad = new RemoteBroker({ server: t.url, apiKey: 'ea_0000000000000000_' + 'x'.repeat(43) });
    await expect(bad.listServices()).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    const reader = t.remote(t.readerKey);
    await expect(reader.deleteService('local')).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    expect((await reader.getIdentity('local', { userId: 'rita' }))?.userId).toBe('rita');
  });

  it('starts a hosted session', async () => {
    const s = await remote.createSession({ serviceId: 'local', userId: 'hosted' });
    expect(s.url.startsWith(`${t.url}/v1/sessions/start?t=`)).toBe(true);
  });
});
