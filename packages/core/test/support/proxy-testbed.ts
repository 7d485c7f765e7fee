/**
 * What the proxy tests share: the test authorization server, the API stand-in asking it whether a
 * token is good, and a LocalBroker whose client may redirect to each named service's callback.
 */
import { expect } from 'vitest';
import type { LocalBroker, LocalBrokerOptions } from '@everyauth/core';
import { startAuthServer, type AuthServer } from './auth-server.js';
import { CLIENT_ID, CLIENT_SECRET, redirectUriFor, startTestBroker, type TestBroker } from './broker.js';
import { startUpstream, type Upstream } from './upstream.js';

export interface ProxyTestbed {
  server: AuthServer;
  upstream: Upstream;
  t: TestBroker;
  broker: LocalBroker;
  close(): Promise<void>;
}

/** Starts the three; `serviceIds` are the services users will authorize (`local` always). */
export async function startProxyTestbed(
  serviceIds: string[] = [],
  brokerOptions: Partial<Omit<LocalBrokerOptions, 'store' | 'vault'>> = {},
): Promise<ProxyTestbed> {
  const server = await startAuthServer({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: ['local', ...serviceIds].map(redirectUriFor) }],
    accessTokenTtl: 3600,
  });
  const upstream = await startUpstream(`${server.issuer}/me`);
  const t = await startTestBroker(server, brokerOptions);
  return {
    server,
    upstream,
    t,
    broker: t.broker,
    async close() {
      await t.close();
      await upstream.close();
      await server.close();
    },
  };
}

/** Makes the provider forget the access token it issued, as a revocation or an early expiry would. */
export async function revokeAccessToken(bed: ProxyTestbed, userId: string, serviceId = 'local'): Promise<void> {
  const fresh = await bed.broker.getIdentity(serviceId, userId);
  const token = await bed.server.provider.AccessToken.find(fresh!.accessToken);
  await token.destroy();
  expect((await bed.server.userinfo(fresh!.accessToken)).status).toBe(401);
}
