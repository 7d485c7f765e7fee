import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ReauthorizationRequired, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { LOCAL_CLIENT, STORES, authorizeUser, startTestBroker, type TestBroker } from './support/broker.js';

/**
 * The token read selects the token columns alone (store.findTokenRows / getTokenRow) and reads the
 * whole row again only when a refresh is due: what it answers must not change for that.
 */
let server: AuthServer;

beforeAll(async () => {
  server = await startAuthServer({
    clients: [LOCAL_CLIENT],
    rotateRefreshTokens: true,
  });
});
afterAll(() => server?.close());

describe.each(STORES)('the token read on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    t = await startTestBroker(server, { kind });
    broker = t.broker;
  });
  afterAll(() => t?.close());
  beforeEach(() => server.resetCounters());

  it('the token columns are the whole row’s, by user, by tenant and user, and by id', async () => {
    await authorizeUser(broker, server, 'ada', { tenantId: 'acme', tags: { team: 'blue' } });
    const whole = (await broker.store.findIdentities({ serviceId: 'local', userId: 'ada' }, 2))[0]!;
    const columns = ['id', 'service_id', 'tenant_id', 'user_id', 'status', 'tokens', 'expires_at', 'updated_at', 'profile', 'tags'];
    const expected = Object.fromEntries(columns.map((c) => [c, whole[c as keyof typeof whole]]));
    expect(await broker.store.findTokenRows('local', 'ada', undefined)).toEqual([expected]);
    expect(await broker.store.findTokenRows('local', 'ada', 'acme')).toEqual([expected]);
    expect(await broker.store.findTokenRows('local', 'ada', 'other')).toEqual([]);
    expect(await broker.store.getTokenRow(whole.id)).toEqual(expected);
    expect(await broker.store.getTokenRow('idn_00000000000000000000000000')).toBeUndefined();
  });

  it('a fresh identity has the same JSON and helpers by user, by filter and by id', async () => {
    await authorizeUser(broker, server, 'bea', { tags: { team: 'red' } });
    const byUser = (await broker.getIdentity('local', 'bea'))!;
    const byFilter = (await broker.getIdentity('local', { userId: 'bea' }))!;
    const byId = (await broker.getIdentity('local', byUser.identityId))!;
    const json = JSON.parse(JSON.stringify(byUser));
    expect(Object.keys(json).sort()).toEqual([
      'accessToken',
      'credential',
      'expiresAt',
      'identityId',
      'native',
      'profile',
      'serviceId',
      'tags',
      'userId',
    ]);
    expect(json).toMatchObject({ serviceId: 'local', userId: 'bea', tags: { team: 'red' }, credential: { type: 'oauth2' } });
    expect(JSON.parse(JSON.stringify(byFilter))).toEqual(json);
    expect(JSON.parse(JSON.stringify(byId))).toEqual(json);
    expect(byUser.headers()).toEqual({ authorization: `Bearer ${byUser.accessToken}` });
    expect((await server.userinfo(byUser.accessToken!)).status).toBe(200);
    // An id of another service names nothing here.
    expect(await broker.getIdentity('other', byUser.identityId)).toBeUndefined();
  });

  it('a due token is refreshed from the whole row, once', async () => {
    await authorizeUser(broker, server, 'cal');
    const before = (await broker.getIdentity('local', 'cal'))!;
    await broker.store.db
      .updateTable('identities')
      .set({ expires_at: Date.now() - 1000 })
      .where('id', '=', before.identityId)
      .execute();
    server.resetCounters();
    const after = (await broker.getIdentity('local', 'cal'))!;
    expect(server.tokenRequests.total).toBe(1);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(Date.parse(after.expiresAt!)).toBeGreaterThan(Date.now());
    expect((await broker.store.getIdentity(before.identityId))!.version).toBeGreaterThan(1);
  });

  it('an identity that needs reauthorization is refused from the token columns', async () => {
    await authorizeUser(broker, server, 'dan');
    const summary = (await broker.findIdentity('local', 'dan'))!;
    await broker.store.setStatus(summary.id, 'needs_reauth', Date.now());
    const err = await broker.getIdentity('local', 'dan').catch((e) => e);
    expect(err).toBeInstanceOf(ReauthorizationRequired);
    expect(err).toMatchObject({ identityId: summary.id, userId: 'dan', identityStatus: 'needs_reauth' });
  });
});
