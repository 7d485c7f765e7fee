import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInput, type IdentityFilter, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from '../support/auth-server.js';
import { LOCAL_CLIENT, STORES, startTestBroker, type TestBroker } from '../support/broker.js';
import { allIdentityRows, failureOf } from './support.js';

/**
 * Hostile ids, tags and filters, on SQLite and PostgreSQL: control characters, NUL, huge strings,
 * malformed Unicode and SQL metacharacters. Invalid values are refused with InvalidInput before
 * they reach the database; valid-but-nasty values are stored verbatim and matched literally.
 */

let server: AuthServer;
beforeAll(async () => {
  server = await startAuthServer({
    clients: [LOCAL_CLIENT],
    accessTokenTtl: 600,
  });
});
afterAll(() => server?.close());

/** Values no id, tenant or tag value may hold. */
const INVALID_TEXT: [string, string][] = [
  ['NUL', 'a\u0000b'],
  ['a lone NUL', '\u0000'],
  ['a newline (log injection)', 'alice\n{"level":50,"msg":"forged"}'],
  ['a carriage return', 'alice\rbob'],
  ['a tab', 'alice\tbob'],
  ['an escape sequence (terminal injection)', 'alice\u001b[2J'],
  ['DEL', 'alice\u007f'],
  ['a C1 control', 'alice\u0085'],
  ['a line separator', 'alice\u2028bob'],
  ['a lone high surrogate', 'alice\ud800'],
  ['a lone low surrogate', '\udc00alice'],
  ['an empty string', ''],
  ['257 characters', 'x'.repeat(257)],
  ['one million characters', 'y'.repeat(1_000_000)],
];

/** Values that are odd but legitimate: stored verbatim, matched only literally. */
const NASTY_BUT_VALID = [
  "' OR 1=1 --",
  "'; DROP TABLE identities; --",
  '" OR ""="',
  '%',
  '_',
  '%_%',
  '\\',
  '\\%',
  '*',
  '[a-z]',
  '$1',
  '{"$ne":null}',
  'ünïcødé',
  '用户',
  '👩‍💻',
  '\u202eevil', // right-to-left override: kept, never interpreted
  'ﬀ', // a ligature that NFKC folds to "ff": must not match "ff"
  'ff',
  'a'.repeat(256),
];

describe.each(STORES)('on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    t = await startTestBroker(server, { kind });
    broker = t.broker;
  });
  afterAll(() => t?.close());

  async function authorize(userId: string, extra: { tenantId?: string; tags?: Record<string, string> } = {}) {
    const started = await broker.beginAuthorization({ serviceId: 'local', userId, ...extra });
    const callback = await server.authorize(started.url, { login: 'someone' });
    return broker.completeAuthorization('local', callback.searchParams);
  }

  describe('invalid ids, tenants and tag values are refused with InvalidInput and reach no table', () => {
    it.each(INVALID_TEXT)('%s', async (_name, bad) => {
      const before = await allIdentityRows(broker);
      const sessions = await broker.store.db.selectFrom('auth_sessions').select('state_hash').execute();
      const calls: [string, () => Promise<unknown>][] = [
        ['begin userId', () => broker.beginAuthorization({ serviceId: 'local', userId: bad })],
        ['begin tenantId', () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tenantId: bad })],
        ['begin tag value', () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: { k: bad } })],
        ['begin tag key', () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: { [bad]: 'v' } })],
        ['begin serviceId', () => broker.beginAuthorization({ serviceId: bad, userId: 'u' })],
        ['getIdentity by userId', () => broker.getIdentity('local', bad)],
        ['findIdentity by userId', () => broker.findIdentity('local', bad)],
        ['getIdentity by filter', () => broker.getIdentity('local', { userId: 'u', tenantId: bad })],
        ['listIdentities tag filter', () => broker.listIdentities('local', { tags: { k: bad } })],
        ['listIdentities userId filter', () => broker.listIdentities('local', { userId: bad })],
        ['listIdentities serviceId', () => broker.listIdentities(bad)],
        ['deleteIdentities', () => broker.deleteIdentities('local', { userId: bad })],
        ['deleteIdentity', () => broker.deleteIdentity(bad)],
      ];
      for (const [what, call] of calls) {
        const err = await failureOf(call());
        // An empty user id on the token-read path means "no such identity", which is also safe.
        if (err === undefined && bad === '' && /^(get|find)Identity by userId$/.test(what)) continue;
        expect(err, `${what} with ${JSON.stringify(bad.slice(0, 20))}`).toBeInstanceOf(InvalidInput);
      }
      expect(await allIdentityRows(broker)).toEqual(before);
      expect(await broker.store.db.selectFrom('auth_sessions').select('state_hash').execute()).toEqual(sessions);
    });

    it('too many tags, bad tag keys, non-string tag values, unknown status, bad page sizes and cursors', async () => {
      const manyTags = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
      const bad: (() => Promise<unknown>)[] = [
        () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: manyTags }),
        () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: { 'a b': 'v' } }),
        () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: { "k'--": 'v' } }),
        () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: { k: 1 as unknown as string } }),
        () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: ['a'] as unknown as Record<string, string> }),
        // An own "__proto__" key, as JSON.parse makes it: refused, and nothing is polluted.
        () => broker.beginAuthorization({ serviceId: 'local', userId: 'u', tags: JSON.parse('{"__proto__": {"admin": "yes"}}') }),
        () => broker.beginAuthorization({ serviceId: 'local', userId: { $ne: null } as unknown as string }),
        () => broker.listIdentities('local', { status: "active' OR '1'='1" as IdentityFilter['status'] }),
        () => broker.listIdentities('local', {}, { count: 0 }),
        () => broker.listIdentities('local', {}, { count: 1e9 }),
        () => broker.listIdentities('local', {}, { count: '10; DROP TABLE identities' as unknown as number }),
        () => broker.listIdentities('local', {}, { next: "' OR 1=1 --" }),
        () => broker.listEvents({ count: -1 }),
      ];
      for (const [i, call] of bad.entries()) expect(await failureOf(call()), `call ${i}`).toBeInstanceOf(InvalidInput);
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
      // A cursor is a position, never SQL: one made of an id-shaped string just pages from there.
      const forged = await broker.listIdentities(
        'local',
        {},
        { next: Buffer.from('idn_zzzzzzzzzzzzzzzzzzzzzzzzzz').toString('base64url') },
      );
      expect(forged.items).toEqual([]);
      const quoted = await broker.listIdentities('local', {}, { next: Buffer.from("idn_' OR 1=1 --").toString('base64url') });
      expect(quoted.items).toEqual((await broker.listIdentities('local', {})).items);
    });
  });

  describe('odd but valid values are stored verbatim and only ever matched literally', () => {
    beforeAll(async () => {
      for (const [i, value] of NASTY_BUT_VALID.entries()) {
        await authorize(value, { tenantId: value, tags: { v: value, i: String(i) } });
      }
    });

    it.each(NASTY_BUT_VALID.map((v) => [JSON.stringify(v).slice(0, 40), v]))('%s', async (_name, value) => {
      const expected = { userId: value, tenantId: value, tags: { v: value } };
      const byUser = await broker.listIdentities('local', { userId: value });
      expect(byUser.items).toHaveLength(1);
      expect(byUser.items[0]).toMatchObject(expected);
      expect((await broker.listIdentities('local', { tenantId: value })).items.map((i) => i.userId)).toEqual([value]);
      expect((await broker.listIdentities('local', { tags: { v: value } })).items.map((i) => i.userId)).toEqual([value]);
      expect(await broker.getIdentity('local', value)).toMatchObject(expected);
      expect(await broker.getIdentity('local', { userId: value, tenantId: value, tags: { v: value } })).toMatchObject(expected);
      expect(await broker.findIdentity('local', value)).toMatchObject(expected);
    });

    it('a lone surrogate never reaches the database, where it would become U+FFFD and match another user', async () => {
      await authorize('mallory\ufffd');
      const forged = 'mallory\ud800';
      for (const call of [
        () => broker.getIdentity('local', forged),
        () => broker.findIdentity('local', forged),
        () => broker.getIdentity('local', { userId: forged }),
        () => broker.listIdentities('local', { userId: forged }),
      ]) {
        const result = await call().catch((err: unknown) => err);
        expect(result).toBeInstanceOf(InvalidInput);
      }
      expect(await broker.deleteIdentities('local', { userId: 'mallory\ufffd' })).toBe(1);
    });

    it('a wildcard or an injection in a filter matches nothing else', async () => {
      const total = (await broker.listIdentities('local', {}, { count: 1000 })).items.length;
      expect(total).toBe(NASTY_BUT_VALID.length);
      for (const probe of ["' OR '1'='1", "x' OR 1=1 --", '%%', '_%', '%a%', "') OR ('a'='a", 'aa%']) {
        expect((await broker.listIdentities('local', { userId: probe })).items, probe).toEqual([]);
        expect((await broker.listIdentities('local', { tags: { v: probe } })).items, probe).toEqual([]);
        expect(await broker.getIdentity('local', probe), probe).toBeUndefined();
      }
    });

    it('deleteIdentities with a metacharacter filter deletes only the literal match', async () => {
      expect(await broker.deleteIdentities('local', { userId: '%' })).toBe(1);
      expect(await broker.deleteIdentities('local', { tags: { v: "' OR 1=1 --" } })).toBe(1);
      expect((await broker.listIdentities('local', {}, { count: 1000 })).items).toHaveLength(NASTY_BUT_VALID.length - 2);
      expect(await broker.findIdentity('local', '%_%')).toBeDefined();
    });
  });

  describe('property: arbitrary strings as ids and filters', () => {
    it('either InvalidInput or an exact, literal answer; never another error', async () => {
      const known = new Set((await broker.listIdentities('local', {}, { count: 1000 })).items.map((i) => i.userId));
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 40 }), async (a, b) => {
          for (const value of [a, b]) {
            for (const call of [
              () => broker.getIdentity('local', value),
              () => broker.listIdentities('local', { userId: value }),
              () => broker.listIdentities('local', { tags: { v: value } }),
              () => broker.findIdentity('local', { tenantId: value }),
            ]) {
              const result = await call().catch((err: unknown) => err);
              if (result instanceof Error) {
                expect(result, String(result)).toBeInstanceOf(InvalidInput);
                continue;
              }
              const found =
                result === undefined
                  ? []
                  : 'items' in (result as object)
                    ? (result as { items: { userId: string }[] }).items
                    : [result as { userId: string }];
              for (const f of found) expect(known.has(f.userId)).toBe(true);
              if (!known.has(value)) expect(found.every((f) => f.userId !== value)).toBe(true);
            }
          }
        }),
        { numRuns: 150 },
      );
    });
  });
});
