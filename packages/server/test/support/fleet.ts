/**
 * Server replicas (processes) on one PostgreSQL database, set up like a deployment behind a load
 * balancer: an admin key, the test authorization server as provider `local-idp` and service
 * `local`, configured through the replicas' own API. With `refreshUrl`, refresh requests go there
 * (a {@link startFaultyTokenEndpoint}) while the code exchange stays with the provider.
 */
import { createKeyRing, openStore, type KeyRing, type Store } from '@everyauth/core';
import { createApiKey } from '@everyauth/server';
import type { AuthServer } from '../../../core/test/support/auth-server.js';
import { CLIENT_SECRET } from '../../../core/test/support/broker.js';
import { startReplicas, stopReplicas, type Replica } from './replicas.js';
import { hostedFlow } from './server.js';

export interface Fleet {
  replicas: Replica[];
  /** The test's own connection to the database, for looking at and arranging rows. */
  store: Store;
  ring: KeyRing;
  /** An admin API key. */
  key: string;
  /** fetch on a replica with the admin key (`json` becomes the body). */
  call(replica: Replica, path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Runs the hosted flow for a user through the first replica. */
  connect(userId: string): Promise<void>;
  /** Starts more replicas on the same database and public URL (stopped by close()). */
  add(count: number, env?: Record<string, string>): Promise<Replica[]>;
  close(): Promise<void>;
}

export async function startFleet(
  as: AuthServer,
  options: { storeUrl: string; count: number; env?: Record<string, string>; refreshUrl?: string; clientId?: string },
): Promise<Fleet> {
  const store = await openStore(options.storeUrl); // migrates once, before the replicas start
  const ring = createKeyRing();
  const { key } = await createApiKey(store, { name: 'fleet', scopes: ['admin'] });
  const replicas = await startReplicas(options.count, { storeUrl: options.storeUrl, ring, env: options.env });
  const base = replicas[0]!.url;
  const all = [...replicas];

  const call: Fleet['call'] = (replica, path, init = {}) => {
    const { json, ...rest } = init;
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (json !== undefined) headers['content-type'] = 'application/json';
    return fetch(replica.url + path, { ...rest, headers, body: json === undefined ? rest.body : JSON.stringify(json), redirect: 'manual' });
  };
  const expectOk = async (r: Promise<Response>, what: string) => {
    const answer = await r;
    if (!answer.ok) throw new Error(`${what}: ${answer.status} ${await answer.text()}`);
    return answer;
  };

  const clientId = options.clientId ?? 'fleet';
  await as.addClient({ client_id: clientId, client_secret: CLIENT_SECRET, redirect_uris: [`${base}/local/callback`] });
  const discover = { method: 'POST', json: { id: 'local-idp', issuer: as.issuer } };
  await expectOk(call(replicas[1 % replicas.length]!, '/v1/providers/discover', discover), 'discover');
  let providerId = 'local-idp';
  if (options.refreshUrl) {
    const discovered = await (await expectOk(call(replicas[0]!, '/v1/providers/local-idp'), 'get provider')).json();
    providerId = 'faulty-idp';
    const faulty = { ...discovered, id: providerId, name: 'Faulty IdP', refreshUrl: options.refreshUrl };
    await expectOk(call(replicas[0]!, `/v1/providers/${providerId}`, { method: 'PUT', json: faulty }), 'put provider');
  }
  const service = { method: 'PUT', json: { providerId, clientId, clientSecret: CLIENT_SECRET } };
  await expectOk(call(replicas[replicas.length - 1]!, '/v1/services/local', service), 'put service');

  return {
    replicas,
    store,
    ring,
    key,
    call,
    async connect(userId) {
      const done = await hostedFlow({ url: base, request: (path, init = {}) => call(replicas[0]!, path, init as RequestInit) }, as, {
        userId,
      });
      if (done.status !== 200) throw new Error(`hosted flow for ${userId}: ${done.status} ${done.body}`);
    },
    async add(count, env = {}) {
      const more = await startReplicas(count, { storeUrl: options.storeUrl, ring, env: { ...options.env, BASE_URL: base, ...env } });
      all.push(...more);
      return more;
    },
    async close() {
      await stopReplicas(all);
      await store.close();
    },
  };
}
