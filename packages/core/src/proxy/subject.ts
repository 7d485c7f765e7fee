import type { IdentitySelector } from '../broker.js';
import type { Credentials } from '../credentials.js';
import { applyCredential, credentialOf } from '../kinds/credential.js';
import { NotFound } from '../errors.js';
import type { Events } from '../events.js';
import type { Identities } from '../identities.js';
import { reauthError } from '../identity-rows.js';
import type { Refresher } from '../refresher.js';
import type { Services } from '../services.js';
import type { Store } from '../store/store.js';
import * as validate from '../validate.js';
import type { ProxySubject } from './fetch.js';

export interface ProxySubjectsDeps {
  store: Store;
  services: Services;
  identities: Identities;
  refresher: Refresher;
  credentials: Credentials;
  events: Events;
  now: () => number;
}

/** The string values of a token set's `native` part: a form kind's non-secret fields. */
const stringsOf = (native: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(native).filter((e): e is [string, string] => typeof e[1] === 'string'));

/**
 * What the proxy needs for one request, from the broker's collaborators: the service's API base
 * URLs, the identity's credential (renewed through the single-flight refresher), and what to do
 * when the API refuses even a renewed one.
 */
export class ProxySubjects {
  constructor(private readonly deps: ProxySubjectsDeps) {}

  async for(serviceId: string, who: IdentitySelector): Promise<ProxySubject> {
    const { store, services, identities, refresher, credentials, events, now } = this.deps;
    const service = await services.row(validate.serviceId(serviceId));
    // A service without base URLs is refused before anything else: it is a configuration error.
    await services.apiBaseUrls(service);
    const found = await identities.findRow(service.id, who);
    if (!found) throw new NotFound('identity', typeof who === 'string' ? who : JSON.stringify(who));
    const baseUrls = await services.apiBaseUrls(service, () => stringsOf(credentials.openTokens(found).native));
    let row = found;
    const provider = await services.getProvider(service.provider_id);
    return {
      serviceId: service.id,
      baseUrls,
      authFailure: provider.api.authFailure,
      privateNetwork: services.apiHostsChosenByService(service, provider),
      credential: async (renew) => {
        if (row.status !== 'active') throw reauthError(row);
        // The row whose token was refused: a caller that renewed meanwhile changed its version, so
        // the refresher hands back that result instead of refreshing again (one refresh per 401 wave).
        if (renew || refresher.needsRefresh(row)) row = await refresher.refresh(row, renew);
        const tokens = credentials.openTokens(row);
        // Each kind applies itself: a bearer token (RFC 6750 §2.1), placed key headers and query
        // parameters, Basic, an OAuth 1.0a signature over this method and URL.
        const credential = credentialOf(tokens);
        return {
          identityId: row.id,
          apply: (headers, method, url) => {
            const signed = applyCredential(credential, method, url.href);
            for (const [name, value] of Object.entries(signed.headers)) headers.set(name, value);
            return new URL(signed.url);
          },
        };
      },
      rejected: async (identityId, status) => {
        // Concurrent callers may all see their resend refused: the first to get here marks it.
        const current = await store.getIdentity(identityId);
        if (current?.status !== 'active') return;
        await store.setStatus(identityId, 'needs_reauth', now());
        await events.emit('identity.needs_reauth', current, {
          error: 'api_unauthorized',
          message: `The API refused a renewed token too (HTTP ${status}).`,
        });
      },
    };
  }
}
