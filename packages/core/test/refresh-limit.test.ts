import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from './support/auth-server.js';
import { LOCAL_CLIENT, authorizeUser, startTestBroker, type TestBroker } from './support/broker.js';

describe('refresh.maxConcurrentPerProvider', () => {
  let as: AuthServer;
  let t: TestBroker;
  const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];

  beforeAll(async () => {
    as = await startAuthServer({
      clients: [LOCAL_CLIENT],
    });
    t = await startTestBroker(as, { refresh: { maxConcurrentPerProvider: 2 } });
    for (const user of users) await authorizeUser(t.broker, as, user);
  });
  afterAll(async () => {
    await t.close();
    await as.close();
  });

  it('holds a provider to the cap when many refreshes start at once, one token request each, every caller served', async () => {
    as.resetCounters();
    // Each token request held a while, so without the cap all six would be open together.
    as.tokenDelayMs = 150;
    const before = await Promise.all(users.map((u) => t.broker.getIdentity('local', u)));
    const fresh = await Promise.all(users.map((u) => t.broker.getIdentity('local', u, { force: true })));
    expect(as.tokenRequests.byGrant).toEqual({ refresh_token: users.length });
    expect(as.tokenRequests.maxInFlight).toBeLessThanOrEqual(2);
    expect(as.tokenRequests.maxInFlight).toBeGreaterThan(0);
    fresh.forEach((f, i) => expect(f!.accessToken).not.toBe(before[i]!.accessToken));
  });

  it('refuses a cap below one', async () => {
    await expect(startTestBroker(as, { refresh: { maxConcurrentPerProvider: 0 } })).rejects.toThrow(RangeError);
  });
});
