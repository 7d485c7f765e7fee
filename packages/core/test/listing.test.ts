import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTED_COLUMNS, type LocalBroker } from '@everyauth/core';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { LOCAL_CLIENT, STORES, authorizeUser, startTestBroker, type TestBroker } from './support/broker.js';

/**
 * A listing reads the columns of the summary it answers with and no others (store.listIdentities,
 * LISTED_COLUMNS): its pages must be the summaries a whole row gives.
 */
let server: AuthServer;

beforeAll(async () => {
  server = await startAuthServer({
    clients: [LOCAL_CLIENT],
  });
});
afterAll(() => server?.close());

describe.each(STORES)('identity listings on %s', (kind) => {
  let t: TestBroker;
  let broker: LocalBroker;
  beforeAll(async () => {
    t = await startTestBroker(server, { kind });
    broker = t.broker;
    await authorizeUser(broker, server, 'ada', { tenantId: 'acme', tags: { team: 'blue', plan: 'pro' } });
    await authorizeUser(broker, server, 'bea', { tags: { team: 'blue' } });
    const { identity } = await authorizeUser(broker, server, 'cy', { tags: { team: 'red' } });
    await broker.updateIdentity(identity.id, { metadata: { crm: 'C-1' } });
  });
  afterAll(() => t?.close());

  it('reads the summary’s columns alone, with the whole row’s values', async () => {
    expect(LISTED_COLUMNS).toHaveLength(16); // of 24: not the tokens, version, lease (2) or refresh failures (4)
    const whole = await broker.store.findIdentities({ serviceId: 'local' }, 10);
    const listed = await broker.store.listIdentities({ serviceId: 'local' }, undefined, 10);
    expect(listed).toHaveLength(3);
    for (const row of listed) {
      expect(Object.keys(row).sort()).toEqual([...LISTED_COLUMNS].sort());
      const source = whole.find((w) => w.id === row.id)!;
      expect(row).toEqual(Object.fromEntries(LISTED_COLUMNS.map((c) => [c, source[c]])));
    }
  });

  it('answers, by tag and page by page, the summaries a whole row gives', async () => {
    const first = await broker.listIdentities('local', { tags: { team: 'blue' } }, { count: 1 });
    const second = await broker.listIdentities('local', { tags: { team: 'blue' } }, { count: 1, next: first.next });
    const items = [...first.items, ...second.items];
    expect(items.map((i) => i.userId).sort()).toEqual(['ada', 'bea']);
    expect(second.next).toBeUndefined();
    for (const item of items) expect(item).toEqual(await broker.findIdentityById(item.id));
    const [cy] = (await broker.listIdentities('local', { tags: { team: 'red' } })).items;
    expect(cy).toEqual(await broker.findIdentityById(cy!.id));
    expect(cy).toMatchObject({ metadata: { crm: 'C-1' }, tags: { team: 'red' } });
    expect(cy!.createdAt).toBe(new Date(Date.parse(cy!.createdAt)).toISOString());
  });
});
