import type { IdentitySelector } from '../broker.js';
import type { Credentials } from '../credentials.js';
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
    const baseUrls = await services.apiBaseUrls(service);
    const found = await identities.findRow(service.id, who);
    if (!found) throw new NotFound('identity', typeof who === 'string' ? who : JSON.stringify(who));
    let row = found;
    return {
      serviceId: service.id,
      baseUrls,
      credential: async (renew) => {
        if (row.status !== 'active') throw reauthError(row);
        // The row whose token was refused: a caller that renewed meanwhile changed its version, so
        // the refresher hands back that result instead of refreshing again (one refresh per 401 wave).
        if (renew || refresher.needsRefresh(row)) row = await refresher.refresh(row, renew);
        const { accessToken } = credentials.openTokens(row);
        // RFC 6750 §2.1. Other credential kinds will bring their own apply.
        return { identityId: row.id, apply: (headers) => headers.set('authorization', `Bearer ${accessToken}`) };
      },
      rejected: async (identityId, status) => {
        // Concurrent callers may all see their resend refused: the first to get here marks it.
        const current = await store.getIdentity(identityId);
        if (current?.status !== 'active') return;
        await store.setStatus(identityId, 'needs_reauth', now());
        await events.emit('identity.needs_reauth', current, {
          error: 'api_unauthorized',
          message: `The API answered ${status} to a renewed token.`,
        });
      },
    };
  }
}
