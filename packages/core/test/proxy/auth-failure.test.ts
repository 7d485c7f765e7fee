import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalBroker } from '@everyauth/core';
import type { AuthServer } from '../support/auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, authorizeUser } from '../support/broker.js';
import { revokeAccessToken, startProxyTestbed, type ProxyTestbed } from '../support/proxy-testbed.js';
import type { Upstream } from '../support/upstream.js';

// A provider whose API refuses a token as Facebook's Graph API does: 400 with error code 190.
let bed: ProxyTestbed;
let server: AuthServer;
let upstream: Upstream;
let broker: LocalBroker;

beforeAll(async () => {
  bed = await startProxyTestbed(['graph']);
  ({ server, upstream, broker } = bed);
  const idp = await broker.getProvider('local-idp');
  await broker.putProvider({
    ...idp,
    id: 'local-graph',
    api: { baseUrls: [`${upstream.origin}/api/graph`], authFailure: { status: [400], field: 'error.code', values: [190] } },
  });
  await broker.putService({ id: 'local', apiBaseUrls: [`${upstream.origin}/api`] });
  await broker.putService({ id: 'graph', providerId: 'local-graph', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
});
afterAll(() => bed?.close());
beforeEach(() => {
  upstream.seen.length = 0;
  server.resetCounters();
});

describe("a provider's declared auth failure (api.authFailure)", () => {
  it('renews a token the API refuses with the declared status and error, resends once, and the caller sees the answer', async () => {
    await authorizeUser(broker, server, 'rene', { serviceId: 'graph' });
    await revokeAccessToken(bed, 'rene', 'graph');
    server.resetCounters();
    const response = await broker.fetch('graph', 'rene', '/check');
    expect(response.status).toBe(200);
    expect((await response.json()).sub).toBe('rene');
    expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
    expect(upstream.seen).toHaveLength(2);
    expect((await broker.findIdentity('graph', 'rene'))!.status).toBe('active');
  });

  it('a second one is passed back as sent, marks the identity needs_reauth with an event, and does not loop', async () => {
    await authorizeUser(broker, server, 'gone', { serviceId: 'graph' });
    server.resetCounters();
    const response = await broker.fetch('graph', 'gone', '/refused');
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { type: 'OAuthException', code: 190 } });
    expect(upstream.seen).toHaveLength(2);
    expect(server.tokenRequests.byGrant.refresh_token).toBe(1);
    const identity = await broker.findIdentity('graph', 'gone');
    expect(identity!.status).toBe('needs_reauth');
    const events = await broker.listEvents({ identityId: identity!.id });
    const event = events.find((e) => e.type === 'identity.needs_reauth')!;
    expect(event.data).toMatchObject({ error: 'api_unauthorized', message: 'The API refused a renewed token too (HTTP 400).' });
  });

  it('the same status without the declared error, or in a body over 64 KiB, is passed through untouched: no renewal', async () => {
    await authorizeUser(broker, server, 'other', { serviceId: 'graph' });
    server.resetCounters();
    const other = await broker.fetch('graph', 'other', '/other');
    expect(other.status).toBe(400);
    expect(other.headers.get('content-type')).toBe('application/json');
    expect(await other.text()).toBe(JSON.stringify({ error: { type: 'GraphMethodException', code: 100 } }));
    const large = await broker.fetch('graph', 'other', '/large');
    expect(large.status).toBe(400);
    const body = (await large.json()) as { padding: string };
    expect(body.padding).toHaveLength(100_000);
    expect(upstream.seen).toHaveLength(2);
    expect(server.tokenRequests.total).toBe(0);
    expect((await broker.findIdentity('graph', 'other'))!.status).toBe('active');
  });

  it("does not apply to another provider's service: there the same answer is just a 400", async () => {
    await authorizeUser(broker, server, 'plain');
    server.resetCounters();
    const response = await broker.fetch('local', 'plain', '/graph/refused');
    expect(response.status).toBe(400);
    expect(server.tokenRequests.total).toBe(0);
  });
});
