/**
 * The server's lifecycle loop (issue 15): with no request from anyone, active identities get
 * health-checked on schedule, and an identity whose grant was revoked turns dead after the
 * configured time, with an `identity.dead` webhook.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../core/test/support/auth-server.js';
import { receiver, waitFor, type Receiver } from './support/receiver.js';
import { hostedFlow, startTestServer, type TestServer } from './support/server.js';

let as: AuthServer;
let t: TestServer;
let hook: Receiver;

beforeAll(async () => {
  as = await startAuthServer({ accessTokenTtl: 3600 });
  t = await startTestServer(as, {
    // About 0.9 s of failures makes an identity dead here; a round every 100 ms.
    broker: { deadAfterDays: 1e-5 },
    server: { lifecycle: { intervalMs: 100, checkEveryMs: 60_000 }, webhooks: { pollMs: 50 } },
  });
  hook = await receiver([]);
  await t.request('/v1/webhooks', { method: 'POST', json: { url: hook.url, events: ['identity.dead', 'identity.check_failed'] } });
});
afterAll(async () => {
  await t?.close();
  await hook?.close();
  await as?.close();
});

const json = async (r: Response) => (await r.json()) as any;

describe('lifecycle loop', () => {
  it('checks active identities on schedule', async () => {
    await hostedFlow(t, as, { userId: 'checked' });
    const identity = await waitFor(async () => {
      const found = (await json(await t.request('/v1/identities?userId=checked'))).items[0];
      return found?.lastCheckedAt && found;
    });
    expect(identity.healthy).toBe(true);
  });

  it('turns a revoked identity dead after the configured time and says so by webhook', async () => {
    await hostedFlow(t, as, { userId: 'doomed', tags: { plan: 'pro' } });
    const { id } = (await json(await t.request('/v1/identities?userId=doomed'))).items[0];
    await as.revokeGrantsFor('doomed');
    expect((await t.request(`/v1/services/local/identities/${id}/token?force=true`)).status).toBe(409);
    const dead = await waitFor(async () => {
      const found = await json(await t.request(`/v1/identities/${id}`));
      return found.status === 'dead' && found;
    });
    expect(dead.failingSince).toBeDefined();
    const event = await waitFor(async () => hook.received.map((r) => JSON.parse(r.body)).find((b) => b.type === 'identity.dead'));
    expect(event).toMatchObject({ identityId: id, userId: 'doomed', tags: { plan: 'pro' }, data: { previousStatus: 'needs_reauth' } });
    const body = await json(await t.request(`/v1/services/local/identities/${id}/token`));
    expect(body).toMatchObject({ error: 'reauthorization_required', identityStatus: 'dead' });
    expect(body.reconnectUrl).toMatch(new RegExp(`^${t.url}/v1/reconnect\\?t=`));
  });
});
