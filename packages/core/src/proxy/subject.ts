import type { IdentitySelector } from '../broker.js';
import type { Credentials } from '../credentials.js';
import { applyCredential, credentialOf } from '../kinds/credential.js';
import { NotFound } from '../errors.js';
import type { Events } from '../events.js';
import type { Identities } from '../identities.js';
import type { TokenSet } from '../oauth/token-set.js';
import { reauthError } from '../identity-rows.js';
import type { Refresher } from '../refresher.js';
import type { Services } from '../services.js';
import type { IdentityRow, Store } from '../store/store.js';
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
    const { services, identities, refresher, credentials } = this.deps;
    const id = validate.serviceId(serviceId);
    // Both rows are read at once (on PostgreSQL, one round trip's wait instead of two); the
    // identity's errors come after the service's own, which it waits for.
    const identity = identities.findRow(id, who);
    identity.catch(() => undefined);
    const service = await services.row(id);
    const provider = await services.getProvider(service.provider_id);
    // A service without base URLs is refused before anything else: it is a configuration error.
    const bases = services.apiBases(service, provider);
    const found = await identity;
    if (!found) throw new NotFound('identity', typeof who === 'string' ? who : JSON.stringify(who));
    // The tokens are opened once here, for the base URLs (only when they need the identity's values) and the first attempt.
    let opened: { row: IdentityRow; tokens: TokenSet } | undefined;
    const open = (row: IdentityRow) => {
      if (opened?.row !== row) opened = { row, tokens: credentials.openTokens(row) };
      return opened.tokens;
    };
    const baseUrls = bases(() => stringsOf(open(found).native));
    let row = found;
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
        // Each kind applies itself: a bearer token (RFC 6750 §2.1), placed key headers and query
        // parameters, Basic, an OAuth 1.0a signature over this method and URL.
        const credential = credentialOf(open(row));
        return {
          identityId: row.id,
          apply: (headers, method, url) => {
            const signed = applyCredential(credential, method, url.href);
            // Lower-case, as the caller's fields are: the credential replaces a field of the same name.
            for (const name in signed.headers) headers[name.toLowerCase()] = signed.headers[name]!;
            return signed.url === url.href ? url : new URL(signed.url);
          },
        };
      },
      rejected: async (identityId, status) => {
        const { store, events, now } = this.deps;
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
