/**
 * `everyauth.connect()`: the connect page, embedded. The app's own session says who the user is,
 * so there is no link to bind; the page lists the services with their state for that user, each
 * button going to the service's authorize route (a new grant on the same user and tenant lands on
 * the same identity, so it is also the reconnect).
 */
import type { Request, RequestHandler } from 'express';
import { ConfigurationError, renderConnectPage, type Broker, type ConnectPageService } from '@everyauth/core';

type MaybePromise<T> = T | Promise<T>;

export interface ConnectOptions {
  /** The services to offer, in this order; each needs an authorize() route. */
  services: string[];
  /** The signed-in user's id in your app; undefined answers 401. */
  mapToUserId: (req: Request) => MaybePromise<string | undefined>;
  mapToTenantId?: (req: Request) => MaybePromise<string | undefined>;
  /** Where the Done button goes; no button when absent. */
  finishedUrl?: string;
  /** A stylesheet for the page (your app's). */
  stylesheet?: string;
}

/** What connect() needs from EveryAuth. */
export interface ConnectHost {
  broker(): Promise<Broker>;
  reauthorizeUrl(serviceId: string, userId: string, tenantId?: string): string | undefined;
}

export function connectHandler(host: ConnectHost, options: ConnectOptions): RequestHandler {
  return (req, res, next) => {
    (async () => {
      const userId = await options.mapToUserId(req);
      if (!userId) return void res.status(401).type('text/plain').send('Sign in to manage your connections.');
      const tenantId = (await options.mapToTenantId?.(req)) ?? undefined;
      const broker = await host.broker();
      const services = await Promise.all(options.services.map((id) => row(host, broker, id, userId, tenantId)));
      const query = req.query as Record<string, string | undefined>;
      const name = services.find((s) => s.serviceId === query.serviceId)?.name;
      const message = query.error
        ? { kind: 'error' as const, text: `${name ?? 'The service'} was not connected: ${query.error_description ?? query.error}` }
        : name
          ? { kind: 'ok' as const, text: `${name} is connected.` }
          : undefined;
      res
        .status(200)
        .set({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
        .send(renderConnectPage({ services, doneHref: options.finishedUrl, message, stylesheet: options.stylesheet }));
    })().catch(next);
  };
}

async function row(
  host: ConnectHost,
  broker: Broker,
  serviceId: string,
  userId: string,
  tenantId: string | undefined,
): Promise<ConnectPageService> {
  const href = host.reauthorizeUrl(serviceId, userId, tenantId);
  if (!href)
    throw new ConfigurationError(
      `connect() offers service "${serviceId}" but no authorize() route for it names the user by its path alone; mount everyauth.authorize('${serviceId}', …) first.`,
    );
  const service = await broker.getService(serviceId);
  const provider = await broker.getProvider(service.providerId);
  const page = await broker.listIdentities(serviceId, { userId, ...(tenantId ? { tenantId } : {}) });
  const identity = page.items.find((i) => i.tenantId === tenantId);
  return {
    serviceId,
    name: provider.name,
    status: identity?.status,
    account: identity ? (identity.profile.email ?? identity.profile.name) : undefined,
    href,
  };
}
