import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthorizationFailed, DecryptionFailed, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, STORES, authorizeUser, redirectUriFor, startTestBroker, type TestBroker } from './support/broker.js';

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUriFor('local'), redirectUriFor('other')] }],
    accessTokenTtl: 60,
  });
});
afterAll(() => server?.close());

describe.each(STORES)('on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    t = await startTestBroker(server, { kind, extraServices: ['other'], allowedRedirectOrigins: ['https://app.example'] });
    broker = t.broker;
  });
  afterAll(() => t?.close());

  async function identityCount() {
    return (await broker.listIdentities(undefined, {}, { count: 1000 })).items.length;
  }

  describe('the authorization flow', () => {
    it('begins, logs in and consents, calls back, stores the identity, and the token works at userinfo', async () => {
      const started = await broker.beginAuthorization({
        serviceId: 'local',
        userId: 'alice',
        tags: { plan: 'pro' },
        finishedUrl: '/done?x=1',
      });
      const url = new URL(started.url);
      expect(url.origin).toBe(server.issuer);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('state')).toBe(started.state);
      expect(url.searchParams.get('nonce')).toBeTruthy();
      expect(url.searchParams.get('redirect_uri')).toBe(redirectUriFor('local'));

      const callback = await server.authorize(started.url, { login: 'alice' });
      expect(callback.searchParams.get('iss')).toBe(server.issuer);
      const done = await broker.completeAuthorization('local', callback.searchParams);

      expect(done.identity).toMatchObject({ serviceId: 'local', userId: 'alice', status: 'active', tags: { plan: 'pro' } });
      expect(done.identity.id).toMatch(/^idn_/);
      expect(done.identity.profile).toMatchObject({ id: 'alice', email: 'alice@example.test' });
      const finished = new URL(done.finishedUrl!, 'http://x');
      expect(finished.pathname).toBe('/done');
      expect(Object.fromEntries(finished.searchParams)).toEqual({ x: '1', userId: 'alice', serviceId: 'local' });

      const fresh = await broker.getIdentity('local', 'alice');
      expect(fresh).toMatchObject({ identityId: done.identity.id, userId: 'alice', tags: { plan: 'pro' } });
      expect(fresh!.native).not.toHaveProperty('refresh_token');
      expect(fresh!.native).toHaveProperty('access_token', fresh!.accessToken);
      const userinfo = await server.userinfo(fresh!.accessToken);
      expect(userinfo.status).toBe(200);
      expect(await userinfo.json()).toMatchObject({ sub: 'alice' });
    });

    it('authorizing again replaces the tokens of the same identity', async () => {
      const first = await broker.getIdentity('local', 'alice');
      const again = await authorizeUser(broker, server, 'alice');
      expect(again.identity.id).toBe(first!.identityId);
      const second = await broker.getIdentity('local', 'alice');
      expect(second!.accessToken).not.toBe(first!.accessToken);
    });

    it('finds identities by user, tenant and tags, and pages through them', async () => {
      await authorizeUser(broker, server, 'bob', { tenantId: 'acme', tags: { team: 'red' } });
      await authorizeUser(broker, server, 'bob', { tenantId: 'globex', tags: { team: 'blue' } });
      await expect(broker.getIdentity('local', 'bob')).rejects.toMatchObject({ code: 'ambiguous_identity' });
      expect((await broker.getIdentity('local', { userId: 'bob', tenantId: 'globex' }))!.tags).toEqual({ team: 'blue' });
      expect((await broker.getIdentity('local', { tags: { team: 'red' } }))!.tenantId).toBe('acme');
      expect(await broker.getIdentity('local', 'nobody')).toBeUndefined();

      const page1 = await broker.listIdentities('local', {}, { count: 2 });
      expect(page1.items).toHaveLength(2);
      const page2 = await broker.listIdentities('local', {}, { count: 2, next: page1.next });
      expect(page2.items.map((i) => i.id)).not.toContain(page1.items[0]!.id);
      expect(page1.items[0]).not.toHaveProperty('accessToken');
    });

    it('deletes with revocation at the provider, and refuses an empty filter', async () => {
      await authorizeUser(broker, server, 'carol');
      const before = await broker.getIdentity('local', 'carol');
      expect(await broker.deleteIdentity(before!.identityId, { revoke: true })).toBe(true);
      expect(await broker.getIdentity('local', 'carol')).toBeUndefined();
      expect((await server.userinfo(before!.accessToken)).status).toBe(401);
      await expect(broker.deleteIdentities('local', {})).rejects.toMatchObject({ code: 'invalid_input' });
    });
  });

  describe('the callback rejects what it did not start, and stores nothing', () => {
    async function failure(serviceId: string, query: Record<string, string> | URLSearchParams) {
      const before = await identityCount();
      const err = await broker.completeAuthorization(serviceId, query).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AuthorizationFailed);
      expect(await identityCount()).toBe(before);
      return err as AuthorizationFailed;
    }

    it('a forged state', async () => {
      const err = await failure('local', { code: 'abc', state: 'forged-state', iss: server.issuer });
      expect(err.message).toMatch(/state.*unknown/);
    });

    it('no state at all', async () => {
      expect((await failure('local', { code: 'abc' })).message).toMatch(/no "state"/);
    });

    it('a replayed state', async () => {
      const started = await broker.beginAuthorization({ serviceId: 'local', userId: 'dave' });
      const callback = await server.authorize(started.url, { login: 'dave' });
      await broker.completeAuthorization('local', callback.searchParams);
      const count = await identityCount();
      const err = await failure('local', callback.searchParams);
      expect(err.message).toMatch(/already used/);
      expect(await identityCount()).toBe(count);
    });

    it('an expired state', async () => {
      let clock = Date.now();
      const late = await startTestBroker(server, { kind, now: () => clock, sessionTtlMs: 1000 });
      try {
        const started = await late.broker.beginAuthorization({ serviceId: 'local', userId: 'erin', finishedUrl: '/done' });
        const callback = await server.authorize(started.url, { login: 'erin' });
        clock += 2000;
        const err = await late.broker.completeAuthorization('local', callback.searchParams).catch((e) => e);
        expect(err).toBeInstanceOf(AuthorizationFailed);
        expect(err.message).toMatch(/expired/);
        expect((await late.broker.listIdentities(undefined)).items).toHaveLength(0);
      } finally {
        await late.close();
      }
    });

    it('sessions expired for a day are pruned when new flows begin', async () => {
      let clock = Date.now();
      const late = await startTestBroker(server, { kind, now: () => clock, sessionTtlMs: 1000 });
      try {
        await late.broker.beginAuthorization({ serviceId: 'local', userId: 'old' });
        const count = async () => (await late.broker.store.db.selectFrom('auth_sessions').select('state_hash').execute()).length;
        clock += 25 * 3600_000;
        await late.broker.beginAuthorization({ serviceId: 'local', userId: 'new' });
        await vi.waitFor(async () => expect(await count()).toBe(1));
      } finally {
        await late.close();
      }
    });

    it('a state from another service (mix-up)', async () => {
      const started = await broker.beginAuthorization({ serviceId: 'local', userId: 'frank', finishedUrl: '/done' });
      const callback = await server.authorize(started.url, { login: 'frank' });
      const err = await failure('other', callback.searchParams);
      expect(err.message).toMatch(/another service/);
      // The user still lands on finishedUrl, with the error.
      const landing = new URL(err.context.finishedUrl!, 'http://x');
      expect(landing.searchParams.get('error')).toBe('invalid_request');
      expect(landing.searchParams.get('error_description')).toMatch(/another service/);
    });

    it('a missing code', async () => {
      const started = await broker.beginAuthorization({ serviceId: 'local', userId: 'gina' });
      const err = await failure('local', { state: started.state, iss: server.issuer });
      expect(err.message).toMatch(/no authorization "code"/);
    });

    it('an issuer that is not the provider (RFC 9207)', async () => {
      const started = await broker.beginAuthorization({ serviceId: 'local', userId: 'hank' });
      const callback = await server.authorize(started.url, { login: 'hank' });
      callback.searchParams.set('iss', 'https://evil.example');
      const err = await failure('local', callback.searchParams);
      expect(err.message).toMatch(/RFC 9207/);
    });

    it('access_denied from the provider', async () => {
      const started = await broker.beginAuthorization({ serviceId: 'local', userId: 'ivy', finishedUrl: '/done' });
      const callback = await server.authorize(started.url, { login: 'ivy', deny: true });
      expect(callback.searchParams.get('error')).toBe('access_denied');
      const err = await failure('local', callback.searchParams);
      expect(err.error).toBe('access_denied');
      expect(new URL(err.context.finishedUrl!, 'http://x').searchParams.get('error')).toBe('access_denied');
    });

    it('a finishedUrl on a foreign origin is refused before the flow starts', async () => {
      for (const bad of [
        'https://evil.example/x',
        '//evil.example/x',
        '/\\evil.example',
        'javascript:alert(1)',
        'https://user@app.example/x',
      ]) {
        await expect(broker.beginAuthorization({ serviceId: 'local', userId: 'jo', finishedUrl: bad })).rejects.toMatchObject({
          code: 'invalid_input',
        });
      }
      await expect(
        broker.beginAuthorization({ serviceId: 'local', userId: 'jo', finishedUrl: 'https://app.example/ok' }),
      ).resolves.toBeTruthy();
    });
  });

  describe('secrets at rest', () => {
    it('the database file holds no token or client secret in clear', async () => {
      const fresh = await broker.getIdentity('local', 'alice');
      const rows = await broker.store.db.selectFrom('identities').select('tokens').execute();
      expect(rows.length).toBeGreaterThan(0);
      let haystack: string;
      if (kind === 'sqlite') {
        // Flush the WAL so the scan sees every page.
        await broker.store.db.executeQuery(sql`PRAGMA wal_checkpoint(TRUNCATE)`.compile(broker.store.db));
        haystack = Buffer.concat([readFileSync(t.dbPath), readFileSync(`${t.dbPath}-wal`, { flag: 'a+' })]).toString('latin1');
      } else {
        // Every row of every table, as PostgreSQL prints it.
        const tables = ['identities', 'services', 'auth_sessions', 'events', 'identity_tags', 'providers'];
        const dumps = await Promise.all(
          tables.map((name) => sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(name)} t`.execute(broker.store.db)),
        );
        haystack = dumps.flatMap((d) => d.rows.map((r) => r.row)).join('\n');
      }
      expect(haystack).not.toContain(fresh!.accessToken);
      expect(haystack).not.toContain(CLIENT_SECRET);
      expect(haystack).not.toContain('"refresh_token"');
    });

    it('a ciphertext copied onto another identity row fails to decrypt', async () => {
      const alice = await broker.findIdentity('local', 'alice');
      const dave = await broker.findIdentity('local', 'dave');
      const { tokens } = await broker.store.db
        .selectFrom('identities')
        .select('tokens')
        .where('id', '=', alice!.id)
        .executeTakeFirstOrThrow();
      await broker.store.db.updateTable('identities').set({ tokens }).where('id', '=', dave!.id).execute();
      await expect(broker.getIdentity('local', 'dave')).rejects.toBeInstanceOf(DecryptionFailed);
    });
  });
});
