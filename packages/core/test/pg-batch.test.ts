import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AmbiguousIdentity, LocalBroker, Vault, createKeyRing, openStore, type Store } from '../src/index.js';
import { newIdentityId } from '../src/ids.js';
import { CoalescedLookup, MAX_IN_FLIGHT } from '../src/store/pg-batch.js';
import { SELECT_TOKEN_ROW } from '../src/store/sql-store.js';
import type { TokenRow } from '../src/store/store.js';
import { createTestDatabase } from './support/broker.js';

/**
 * The PostgreSQL store coalesces concurrent token reads into one statement (store/pg-batch.ts):
 * every caller must still get exactly its own rows, its own ambiguity and its own errors.
 */
let db: { url: string; drop(): Promise<void> };
let store: Store;
let broker: LocalBroker;
const vault = Vault.fromKeyRing(createKeyRing());

const WEIRD = ['NULL', 'we"ird', 'back\\slash', '{a,b}', ' spaced ', 'ünï ☃', ''];

/** One identity per (user, tenant); its access token names both, so a row handed to the wrong caller shows. */
const IDENTITIES: [user: string, tenant: string][] = [
  ...Array.from({ length: 40 }, (_, i): [string, string] => [`u${i}`, '']),
  ['amb', 'x'],
  ['amb', 'y'],
  ['ten', 'a'],
  ['ten', 'b'],
  // Text that PostgreSQL's array syntax quotes or escapes: the batch sends the keys as text[].
  ...WEIRD.map((user): [string, string] => [user, '']),
];
/** The identities' ids, in the order of IDENTITIES. */
const ids: string[] = [];
const accessToken = (user: string, tenant: string) => `tok-${user}-${tenant}`;

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openStore(db.url);
  broker = new LocalBroker({ store, vault, baseUrl: 'http://127.0.0.1:1' });
  await broker.putProvider({
    id: 'idp',
    name: 'IdP',
    docs: 'https://idp.example/docs',
    authorizationUrl: 'https://idp.example/authorize',
    tokenUrl: 'https://idp.example/token',
  });
  await broker.putService({ id: 'svc', providerId: 'idp', clientId: 'client', clientSecret: 'secret' });
  for (const [user, tenant] of IDENTITIES) {
    const { row } = await store.upsertIdentity(
      {
        service_id: 'svc',
        tenant_id: tenant,
        user_id: user,
        tags: {},
        expires_at: Date.now() + 3600_000,
        scope: null,
        profile: JSON.stringify({ id: user }),
        sealTokens: (id) => vault.seal(JSON.stringify({ a: accessToken(user, tenant), t: 'bearer' }), `identity:${id}`),
      },
      () => newIdentityId(),
      Date.now(),
    );
    ids.push(row.id);
  }
});
afterAll(async () => {
  await broker?.close();
  await db?.drop();
});

/** The names of the statements the store sends from here on (its pool is a pg.Pool). */
function statements(): string[] {
  const names: string[] = [];
  const query = pg.Pool.prototype.query;
  vi.spyOn(pg.Pool.prototype, 'query').mockImplementation(function (this: pg.Pool, ...args: unknown[]) {
    names.push((args[0] as pg.QueryConfig).name ?? '');
    return Reflect.apply(query, this, args);
  } as typeof query);
  return names;
}
afterEach(() => vi.restoreAllMocks());

/** A shuffle that is the same every run. */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  let seed = 7;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 48271) % 2147483647;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('coalesced token reads on PostgreSQL', () => {
  it('concurrent reads of different users each get their own rows, in fewer statements', async () => {
    const sent = statements();
    const users = shuffled([...Array.from({ length: 40 }, (_, i) => `u${i}`), 'nobody', 'u3', 'u3', 'nobody-else']);
    const results = await Promise.all(users.map((u) => store.findTokenRows('svc', u, undefined)));
    results.forEach((rows, i) => {
      const user = users[i]!;
      if (user.startsWith('nobody')) expect(rows).toEqual([]);
      else
        expect(rows.map((r) => [r.user_id, r.tenant_id, vault.open(r.tokens, `identity:${r.id}`)])).toEqual([
          [user, '', expect.stringContaining(accessToken(user, ''))],
        ]);
    });
    // Two callers of the same user get equal rows, not the same objects.
    const [a, b] = users.flatMap((u, i) => (u === 'u3' ? [results[i]![0]!] : []));
    expect(a).toEqual(b);
    expect(a).not.toBe(b);
    expect(sent.filter((n) => n === 'everyauth_token_by_user_batch').length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(users.length / 2);
  });

  it('by id too', async () => {
    const sent = statements();
    const asked = shuffled([...ids.keys(), -1]);
    const rows = await Promise.all(asked.map((i) => store.getTokenRow(ids[i] ?? newIdentityId())));
    rows.forEach((row, n) => {
      const i = asked[n]!;
      if (i === -1) expect(row).toBeUndefined();
      else expect([row!.id, row!.user_id, row!.tenant_id]).toEqual([ids[i], ...IDENTITIES[i]!]);
    });
    expect(sent.filter((n) => n === 'everyauth_token_by_id_batch').length).toBeGreaterThan(0);
  });

  it('an ambiguous user in a batch is ambiguous for its own caller alone', async () => {
    const sent = statements();
    const users = [
      ...Array.from({ length: 20 }, (_, i) => `u${i}`),
      'nobody',
      'amb',
      ...Array.from({ length: 20 }, (_, i) => `u${20 + i}`),
    ];
    const results = await Promise.allSettled(users.map((u) => broker.getIdentity('svc', u)));
    results.forEach((r, i) => {
      if (users[i] === 'nobody') expect(r).toEqual({ status: 'fulfilled', value: undefined });
      else if (users[i] === 'amb') {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(AmbiguousIdentity);
      } else {
        expect(r.status).toBe('fulfilled');
        const fresh = (r as PromiseFulfilledResult<Awaited<ReturnType<LocalBroker['getIdentity']>>>).value!;
        expect([fresh.userId, fresh.accessToken]).toEqual([users[i], accessToken(users[i]!, '')]);
      }
    });
    expect(sent.filter((n) => n === 'everyauth_token_by_user_batch').length).toBeGreaterThan(0);
  });

  it('by tenant and user: each caller gets its tenant’s row', async () => {
    const sent = statements();
    const keys: [string, string | undefined][] = shuffled([
      ['ten', 'a'],
      ['ten', 'b'],
      ['ten', 'c'],
      ['amb', 'y'],
      ['amb', 'x'],
      ['u5', ''],
      ['u5', 'a'],
      ['ten', 'a'],
      ['amb', 'x'],
      ['u6', ''],
    ]);
    const results = await Promise.all(keys.map(([u, t]) => store.findTokenRows('svc', u, t)));
    results.forEach((rows, i) => {
      const [user, tenant] = keys[i]!;
      const expected = IDENTITIES.some(([u, t]) => u === user && t === tenant) ? [[user, tenant]] : [];
      expect(rows.map((r) => [r.user_id, r.tenant_id])).toEqual(expected);
    });
    expect(sent.filter((n) => n === 'everyauth_token_by_tenant_user_batch').length).toBeGreaterThan(0);
  });

  it('user ids that the array syntax quotes reach their own rows', async () => {
    const users = shuffled([...WEIRD, ...WEIRD.map((u) => `${u}x`), 'u1', 'u2']);
    const results = await Promise.all(users.map((u) => store.findTokenRows('svc', u, undefined)));
    results.forEach((rows, i) => expect(rows.map((r) => r.user_id)).toEqual(IDENTITIES.some(([u]) => u === users[i]) ? [users[i]] : []));
  });

  it('a statement that cannot be sent fails its read alone', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const lookup = new CoalescedLookup<TokenRow>(
        { name: 'sync_throw', select: SELECT_TOKEN_ROW, keys: ['service_id', 'user_id'], limit: 2 },
        (config) => {
          if ((config.values as unknown[])[1] === 'throws') throw new Error('cannot send');
          return pool.query(config);
        },
      );
      const users = ['throws', ...Array.from({ length: 10 }, (_, i) => `u${i}`)];
      const results = await Promise.allSettled(users.map((u) => lookup.read(['svc', u])));
      expect(results[0]).toMatchObject({ status: 'rejected', reason: { message: 'cannot send' } });
      results.slice(1).forEach((r, i) => expect(r).toMatchObject({ status: 'fulfilled', value: [{ user_id: `u${i}` }] }));
    } finally {
      await pool.end();
    }
  });

  it('a batch that fails rejects every caller in it, and the next reads go on', async () => {
    // PostgreSQL refuses a text value with a NUL character (the broker's validation keeps them out):
    // a real error of the batched statement, for the key that queued last.
    const users = [...Array.from({ length: 12 }, (_, i) => `u${i}`), 'bad\0user'];
    const results = await Promise.allSettled(users.map((u) => store.findTokenRows('svc', u, undefined)));
    // The first reads went alone, before any queued; the rest went together, with the bad key.
    results
      .slice(0, MAX_IN_FLIGHT)
      .forEach((r, i) => expect(r).toEqual({ status: 'fulfilled', value: [expect.objectContaining({ user_id: users[i] })] }));
    const failed = results.slice(MAX_IN_FLIGHT);
    expect(failed.length).toBeGreaterThan(1);
    for (const r of failed)
      expect(r).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringMatching(/0x00/) }) });
    expect(
      (await Promise.all(['u1', 'u2', 'u3'].map((u) => store.findTokenRows('svc', u, undefined)))).map((rows) => rows[0]!.user_id),
    ).toEqual(['u1', 'u2', 'u3']);
  });
});
