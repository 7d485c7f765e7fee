/**
 * The webhook list events are matched against: read once for a burst of events, at once anew after
 * a change through this replica, within `subscriptionsCacheMs` after a change through another; a
 * failed read is not kept, and a delivery matched to a webhook deleted elsewhere is pruned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Vault, createKeyRing, openStore, sortableId, type BrokerEvent, type Store } from '@everyauth/core';
import { migrateServerTables } from '../src/migrations/index.js';
import { Metrics } from '../src/metrics.js';
import { serverDb } from '../src/tables.js';
import { Webhooks } from '../src/webhooks.js';
import { STORES, createTestDatabase } from '../../core/test/support/broker.js';

describe.each(STORES)('on %s', (kind) => {
  let dir: string;
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  const vault = Vault.fromKeyRing(createKeyRing());

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'everyauth-webhook-subscriptions-'));
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      drop = db.drop;
      store = await openStore(db.url);
    } else store = await openStore(join(dir, 'everyauth.db'));
    await migrateServerTables(store);
  });
  afterAll(async () => {
    await store.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await serverDb(store).deleteFrom('webhook_deliveries').execute();
    await serverDb(store).deleteFrom('webhooks').execute();
  });
  afterEach(() => vi.useRealTimers());

  /** A replica's webhook queue (not polling: only what enqueue records is looked at). */
  const replica = (subscriptionsCacheMs?: number) =>
    new Webhooks(store, vault, pino({ level: 'silent' }), new Metrics(), { subscriptionsCacheMs });

  const event = (): BrokerEvent => ({
    id: sortableId('evt_'),
    type: 'identity.refreshed',
    serviceId: 'github',
    identityId: 'idn_1',
    userId: 'user-1',
    tags: {},
    at: new Date().toISOString(),
    data: {},
  });

  const deliveries = async () =>
    (await serverDb(store).selectFrom('webhook_deliveries').select('webhook_id').execute()).map((r) => r.webhook_id);

  it('reads the webhooks once for a burst of events, and records a delivery for each event', async () => {
    const queue = replica();
    const { webhook } = await queue.create({ url: 'https://hooks.example/a' });
    const list = vi.spyOn(queue, 'list');
    await Promise.all(Array.from({ length: 50 }, () => queue.enqueue(event())));
    await queue.enqueue(event());
    expect(list).toHaveBeenCalledTimes(1);
    expect(await deliveries()).toEqual(Array(51).fill(webhook.id));
  });

  it('applies a webhook created or deleted through this replica to the next event', async () => {
    const queue = replica();
    await queue.enqueue(event()); // the (empty) list is now cached
    const { webhook } = await queue.create({ url: 'https://hooks.example/a' });
    await queue.enqueue(event());
    expect(await deliveries()).toEqual([webhook.id]);
    await queue.delete(webhook.id);
    await queue.enqueue(event());
    expect(await deliveries()).toEqual([]);
  });

  it('applies a webhook created through another replica within subscriptionsCacheMs, on the monotonic clock', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'Date'] });
    const here = replica(1_000);
    const elsewhere = replica(1_000);
    await here.enqueue(event());
    const { webhook } = await elsewhere.create({ url: 'https://hooks.example/a' });
    vi.advanceTimersByTime(999);
    await here.enqueue(event());
    expect(await deliveries()).toEqual([]); // still the list read before the webhook existed
    vi.setSystemTime(Date.now() - 3_600_000); // the wall clock set back an hour does not keep it longer
    vi.advanceTimersByTime(1);
    await here.enqueue(event());
    expect(await deliveries()).toEqual([webhook.id]);
  });

  it('reads every time with subscriptionsCacheMs 0', async () => {
    const queue = replica(0);
    const list = vi.spyOn(queue, 'list');
    await queue.enqueue(event());
    await queue.enqueue(event());
    expect(list).toHaveBeenCalledTimes(2);
  });

  it('does not keep a failed read: the event fails, and the next one reads again', async () => {
    const queue = replica();
    await queue.create({ url: 'https://hooks.example/a' });
    const list = vi.spyOn(queue, 'list').mockRejectedValueOnce(new Error('store down'));
    await expect(queue.enqueue(event())).rejects.toThrow('store down');
    await queue.enqueue(event());
    expect(list).toHaveBeenCalledTimes(2);
    expect(await deliveries()).toHaveLength(1);
  });

  it('prunes a delivery matched to a webhook that another replica deleted, and keeps pending ones', async () => {
    const here = replica();
    const elsewhere = replica();
    const { webhook: kept } = await here.create({ url: 'https://hooks.example/kept' });
    const { webhook: gone } = await here.create({ url: 'https://hooks.example/gone' });
    await here.enqueue(event()); // caches both
    await elsewhere.delete(gone.id);
    await here.enqueue(event()); // matched to the deleted one too, from the cached list
    expect((await deliveries()).sort()).toEqual([kept.id, kept.id, gone.id].sort());
    expect(await here.prune()).toBe(1);
    expect(await deliveries()).toEqual([kept.id, kept.id]);
  });
});
