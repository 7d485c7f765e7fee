/**
 * Local stand-ins for Asana and Google, and the wiring that points an EveryAuth broker at them:
 * custom providers `asana-local` / `google-local` (the built-in definitions with the stand-ins'
 * URLs) and services that use them, with the stand-ins' clients registered at the right redirect URL.
 */
import type { Broker, Provider } from '@everyauth/core';
import { startAsanaStandIn, type AsanaStandIn } from './asana.js';
import { startGoogleStandIn, type GoogleStandIn } from './google.js';

export { startAsanaStandIn, DEMO_TASKS, type AsanaStandIn, type AsanaTask } from './asana.js';
export { startGoogleStandIn, parseQuickAdd, type CalendarEvent, type GoogleStandIn } from './google.js';
export { OAuthStandIn, accountFor, type StandInClient } from './oauth.js';

export const DEMO_CLIENT_SECRET = 'stand-in-client-secret';

export interface StandIns {
  asana: AsanaStandIn;
  google: GoogleStandIn;
  close(): Promise<void>;
}

export async function startStandIns(ports: { asana?: number; google?: number } = {}): Promise<StandIns> {
  const asana = await startAsanaStandIn({ port: ports.asana });
  const google = await startGoogleStandIn({ port: ports.google }).catch(async (err: unknown) => {
    await asana.close();
    throw err;
  });
  return { asana, google, close: async () => void (await Promise.all([asana.close(), google.close()])) };
}

const URL_FIELDS = ['authorizationUrl', 'tokenUrl', 'refreshUrl', 'revocationUrl', 'userinfoUrl'] as const;

/** A built-in provider moved to another host: the same paths, parameters and token handling. */
export function rehostProvider(provider: Provider, id: string, baseUrl: string): Provider {
  const moved: Provider = {
    ...provider,
    id,
    name: `${provider.name} (local stand-in)`,
    issuer: provider.issuer === undefined ? undefined : baseUrl,
  };
  for (const field of URL_FIELDS) {
    const value = provider[field];
    if (value !== undefined) moved[field] = `${baseUrl}${new URL(value).pathname}`;
  }
  if (provider.profile?.url) moved.profile = { ...provider.profile, url: `${baseUrl}${new URL(provider.profile.url).pathname}` };
  return moved;
}

export interface StandInService {
  /** The service id the app uses (`asana`, `google`). */
  id: string;
  provider: 'asana' | 'google';
  scopes: string[];
}

/**
 * Points `services` at the stand-ins: registers `asana-local` / `google-local`, the services, and
 * each service's client at its stand-in with the broker's redirect URL for it.
 */
export async function connectStandIns(
  broker: Broker,
  standIns: Pick<StandIns, 'asana' | 'google'>,
  services: StandInService[],
): Promise<void> {
  for (const service of services) {
    const standIn = standIns[service.provider];
    const providerId = `${service.provider}-local`;
    await broker.putProvider(rehostProvider(await broker.getProvider(service.provider), providerId, standIn.url));
    const clientId = `${service.id}-demo-client`;
    const configured = await broker.putService({
      id: service.id,
      providerId,
      clientId,
      clientSecret: DEMO_CLIENT_SECRET,
      scopes: service.scopes,
    });
    await standIn.oauth.addClient({ clientId, clientSecret: DEMO_CLIENT_SECRET, redirectUris: [configured.redirectUrl] });
  }
}
