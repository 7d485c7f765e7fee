/**
 * Webhooks for every change (issue 15): the payload names the identity (id, service, user,
 * tenant, tags) with an idempotency key and a delivery id; a failed delivery is replayed through
 * the API with the same ids; old deliveries are pruned after the retention.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '@everyauth/core';
import { verifyWebhookSignature } from '@everyauth/server';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { receiver, waitFor } from './support/receiver.js';
import { hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  t = await startTestServer(as, { server: { webhooks: { pollMs: 50, baseDelayMs: 20, maxAttempts: 2 } } });
});
afterAll(async () => {
  await t?.close();
  await as?.close();
});

const json = async (r: Response) => (await r.json()) as any;

describe('webhooks for every change', () => {
  it('offers every lifecycle event type and refuses an unknown one', async () => {
    for (const type of ['created', 'reconnected', 'refresh_failed', 'needs_reauth', 'recovered', 'dead', 'deleted', 'check_failed']) {
      expect(EVENT_TYPES).toContain(`identity.${type}`);
    }
    const refused = await t.request('/v1/webhooks', {
      method: 'POST',
      json: { url: 'http://127.0.0.1:1/x', events: ['identity.exploded'] },
    });
    expect(refused.status).toBe(400);
  });

  it('sends the identity with tags, an idempotency key and a delivery id; only subscribed types', async () => {
    const hook = await receiver([]);
    try {
      const { id, secret } = await json(
        await t.request('/v1/webhooks', { method: 'POST', json: { url: hook.url, events: ['identity.created', 'identity.updated'] } }),
      );
      await hostedFlow(t, as, { userId: 'wh-user', tenantId: 'acme', tags: { plan: 'pro' } });
      await t.request('/v1/services/local/token?userId=wh-user&tenantId=acme&force=true'); // identity.refreshed: not subscribed
      const identity = (await json(await t.request('/v1/identities?userId=wh-user'))).items[0];
      const patched = await t.request(`/v1/identities/${identity.id}`, { method: 'PATCH', json: { tags: { plan: 'team' } } });
      expect(patched.status).toBe(200);

      const bodies = await waitFor(async () => hook.received.length >= 2 && hook.received.map((r) => JSON.parse(r.body)));
      expect(bodies.map((b: any) => b.type)).toEqual(['identity.created', 'identity.updated']);
      const [created, updated] = bodies;
      expect(created).toMatchObject({
        identityId: identity.id,
        serviceId: 'local',
        userId: 'wh-user',
        tenantId: 'acme',
        tags: { plan: 'pro' },
        idempotencyKey: created.id,
      });
      expect(updated.tags).toEqual({ plan: 'team' });
      const deliveries = await json(await t.request(`/v1/webhooks/${id}/deliveries`));
      expect(deliveries.map((d: any) => d.id)).toEqual([created.deliveryId, updated.deliveryId]);
      expect(hook.received[0]!.headers['everyauth-delivery']).toBe(created.deliveryId);
      expect(hook.received[0]!.headers['everyauth-idempotency-key']).toBe(created.id);
      for (const r of hook.received) expect(verifyWebhookSignature(secret, String(r.headers['everyauth-signature']), r.body)).toBe(true);
      await t.request(`/v1/webhooks/${id}`, { method: 'DELETE' });
    } finally {
      await hook.close();
    }
  });

  it('replays a failed delivery with the same delivery id and idempotency key', async () => {
    const hook = await receiver([500, 500]);
    try {
      const { id } = await json(await t.request('/v1/webhooks', { method: 'POST', json: { url: hook.url, events: ['identity.created'] } }));
      await hostedFlow(t, as, { userId: 'replay-user' });
      const [failed] = await waitFor(async () => {
        const list = await json(await t.request(`/v1/webhooks/${id}/deliveries`));
        return list[0]?.status === 'failed' && list;
      });
      const early = await t.request(`/v1/webhooks/${id}/deliveries/dlv_nope/replay`, { method: 'POST' });
      expect(early.status).toBe(404);

      const replay = await t.request(`/v1/webhooks/${id}/deliveries/${failed.id}/replay`, { method: 'POST' });
      expect(replay.status).toBe(200);
      const [done] = await waitFor(async () => {
        const list = await json(await t.request(`/v1/webhooks/${id}/deliveries`));
        return list[0]?.status === 'delivered' && list;
      });
      expect(done).toMatchObject({ id: failed.id, attempts: 1, responseStatus: 200 });
      expect(hook.received).toHaveLength(3);
      const bodies = hook.received.map((r) => JSON.parse(r.body));
      expect(new Set(bodies.map((b) => b.deliveryId))).toEqual(new Set([failed.id]));
      expect(new Set(bodies.map((b) => b.idempotencyKey))).toEqual(new Set([failed.eventId]));

      const again = await t.request(`/v1/webhooks/${id}/deliveries/${failed.id}/replay`, { method: 'POST' });
      expect(again.status).toBe(409);
      expect(await json(again)).toMatchObject({ error: 'delivery_not_failed' });
      await t.request(`/v1/webhooks/${id}`, { method: 'DELETE' });
    } finally {
      await hook.close();
    }
  });

  it('prunes finished deliveries older than the retention, keeping newer and pending ones', async () => {
    const hook = await receiver([]);
    try {
      const { id } = await json(await t.request('/v1/webhooks', { method: 'POST', json: { url: hook.url, events: ['identity.created'] } }));
      await hostedFlow(t, as, { userId: 'prune-user' });
      await waitFor(async () => (await json(await t.request(`/v1/webhooks/${id}/deliveries`)))[0]?.status === 'delivered');
      const webhooks = t.app.everyauth.webhooks;
      expect(await webhooks.prune(Date.now() + 13 * 24 * 3600_000)).toBe(0);
      expect(await webhooks.prune(Date.now() + 15 * 24 * 3600_000)).toBeGreaterThan(0);
      expect(await json(await t.request(`/v1/webhooks/${id}/deliveries`))).toEqual([]);
    } finally {
      await hook.close();
    }
  });
});
