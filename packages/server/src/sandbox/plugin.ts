import { dirname, join } from 'node:path';
import type { Broker, Service } from '@everyauth/core';
import { randomToken, readEnv } from '@everyauth/core';
import type { FastifyInstance } from 'fastify';
import { createSandbox, SANDBOX_PROVIDER_ID, type Sandbox, type SandboxOptions } from './sandbox.js';

/**
 * Where the server mounts the sandbox. It starts with `_`, which no service id can (they start
 * with a letter or digit), so it never shadows a service's `/{serviceId}/callback`, the sandbox
 * service's own `/sandbox/callback` included.
 */
export const SANDBOX_PATH = '/_sandbox';
export const SANDBOX_SERVICE_ID = 'sandbox';
export const SANDBOX_CLIENT_ID = 'everyauth-sandbox';

export interface SandboxRoutesOptions {
  sandbox: Sandbox;
}

/**
 * Hands every request under the sandbox's path to oidc-provider untouched: in the route's
 * onRequest hook, before Fastify reads the body (oidc-provider parses its own forms and JSON).
 */
export async function sandboxRoutes(app: FastifyInstance, { sandbox }: SandboxRoutesOptions): Promise<void> {
  if (sandbox.basePath === '')
    throw new TypeError('A sandbox mounted in the server needs an issuer with a path, e.g. `${baseUrl}/_sandbox`.');
  app.route({
    method: ['GET', 'POST', 'OPTIONS', 'DELETE', 'PUT', 'PATCH'],
    url: `${sandbox.basePath}/*`,
    // Public like any authorization server's pages; oidc-provider authenticates its own clients.
    config: { access: 'public', rateLimit: false },
    schema: { hide: true },
    onRequest: (request, reply) => {
      reply.hijack();
      sandbox.handle(request.raw, reply.raw);
    },
    handler: async () => undefined, // never reached: onRequest took the request over
  });
}

/**
 * Registers the sandbox as custom provider `sandbox` and configures service `sandbox` with a
 * client registered in the sandbox, so "connect" works with no configuration. A new client secret
 * is made each time: the broker keeps it sealed and never hands it back, and the sandbox's client
 * registry is replaced on every start anyway. Scopes and parameters set on the service are kept.
 */
export async function registerSandboxService(broker: Broker, sandbox: Sandbox, options: { serviceId?: string } = {}): Promise<Service> {
  const clientSecret = randomToken();
  await broker.putProvider(sandbox.providerDefinition(SANDBOX_PROVIDER_ID));
  const service = await broker.putService({
    id: options.serviceId ?? SANDBOX_SERVICE_ID,
    providerId: SANDBOX_PROVIDER_ID,
    clientId: SANDBOX_CLIENT_ID,
    clientSecret,
  });
  await sandbox.ensureClient(SANDBOX_CLIENT_ID, clientSecret, [service.redirectUrl]);
  return service;
}

/**
 * Whether a server runs the sandbox: the explicit choice, else EVERYAUTH_SANDBOX (`1`/`true` or
 * `0`/`false`, see core's EnvSchema), else on for a SQLite store (the local default of `npm start`) and off for
 * PostgreSQL or with NODE_ENV=production (a production deployment turns it on explicitly, if ever).
 */
export function sandboxWanted(store: string, env: NodeJS.ProcessEnv = process.env, explicit?: boolean): boolean {
  if (explicit !== undefined) return explicit;
  const flag = readEnv(env, ['EVERYAUTH_SANDBOX']).EVERYAUTH_SANDBOX;
  if (flag !== undefined) return flag;
  if (env.NODE_ENV === 'production') return false;
  return !/^postgres(ql)?:\/\//i.test(store);
}

/**
 * The sandbox of a server whose public URL is `baseUrl`: mounted at `${baseUrl}/_sandbox`, its
 * grants kept in `sandbox.json` next to a SQLite store (in memory for PostgreSQL, whose replicas
 * could not share a file anyway).
 */
export function serverSandbox(
  baseUrl: string,
  store: string,
  options: Omit<SandboxOptions, 'issuer' | 'stateFile'> = {},
): Promise<Sandbox> {
  const sqliteFile = !/^[a-z]+:\/\//i.test(store) && store !== ':memory:' ? store : undefined;
  return createSandbox({
    ...options,
    issuer: `${baseUrl.replace(/\/+$/, '')}${SANDBOX_PATH}`,
    stateFile: sqliteFile ? join(dirname(sqliteFile), 'sandbox.json') : undefined,
  });
}

/** Everything buildServer needs: the routes, provider and service `sandbox`, and closing with the app. */
export async function enableSandbox(app: FastifyInstance, broker: Broker, sandbox: Sandbox): Promise<void> {
  await app.register(sandboxRoutes, { sandbox });
  await registerSandboxService(broker, sandbox);
  app.addHook('onClose', async () => sandbox.close());
}
