import type { LocalBroker, Store, Vault } from '@everyauth/core';
import type { ApiKeyVerifier, Scope, VerifiedKey } from './api-keys.js';
import type { Metrics } from './metrics.js';
import type { Webhooks } from './webhooks.js';

/** Who may call a route: anyone (hosted flow, health, metrics), or a key with this scope (`admin` always may). */
export type Access = 'public' | Scope;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** The body streams on as it arrives (the proxy): it has no total deadline, only a pause limit (body-deadline.ts). */
    streamsBody?: boolean;
  }
  interface FastifyRequest {
    apiKey?: VerifiedKey;
  }
  interface FastifyInstance {
    everyauth: ServerContext;
  }
}

/** What the routes share; one per server, no global state. */
export interface ServerContext {
  broker: LocalBroker;
  store: Store;
  vault: Vault;
  keys: ApiKeyVerifier;
  metrics: Metrics;
  webhooks: Webhooks;
  /** The server's public URL, no trailing slash. */
  publicUrl: string;
}
