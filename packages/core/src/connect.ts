/**
 * Identities that come without a redirect flow: a credential the user typed in or the app already
 * holds (`putIdentity`: checked with the provider before it is stored), and a client-credentials
 * service's token, fetched the first time it is asked for.
 */
import type { FreshIdentity, IdentitySelector, IdentitySummary, Profile, PutIdentity } from './broker.js';
import type { Credentials } from './credentials.js';
import type { Events } from './events.js';
import { toFresh, toSummary } from './identity-rows.js';
import { newIdentityId } from './ids.js';
import { APP_USER_ID, clientCredentialsGrant } from './kinds/client-credentials.js';
import { checkCredential } from './kinds/put.js';
import { RefreshFailure, toBrokerError } from './oauth/engine.js';
import type { TokenSet } from './oauth/token-set.js';
import type { Services } from './services.js';
import type { IdentityRow, Store } from './store/store.js';
import * as validate from './validate.js';

/** `putIdentity` and client-credentials first use, for the LocalBroker facade. */
export class Connect {
  private readonly firstUses = new Map<string, Promise<FreshIdentity | undefined>>();

  constructor(
    private readonly store: Store,
    private readonly credentials: Credentials,
    private readonly services: Services,
    private readonly events: Events,
    private readonly now: () => number,
  ) {}

  /** Stores a typed-in or imported credential once the provider accepted it; replaces the user's earlier one. */
  async put(input: PutIdentity): Promise<IdentitySummary> {
    const service = await this.services.row(validate.serviceId(input.serviceId));
    const userId = validate.userId(input.userId);
    const tenantId = input.tenantId === undefined ? '' : validate.tenantId(input.tenantId);
    const tags = validate.tags(input.tags);
    const ctx = await this.services.context(service, tenantId);
    const variables = JSON.parse(service.variables) as Record<string, string>;
    const scopes = this.services.scopes(service, ctx.provider);
    const consumer = ctx.provider.kind === 'oauth1' ? this.services.consumer(service, ctx.provider) : undefined;
    const { tokens, profile } = await checkCredential(ctx, input, { variables, scopes, consumer }, this.services.apiAgents, this.now);
    return toSummary(await this.write(service.id, tenantId, userId, tags, tokens, profile));
  }

  /**
   * A client-credentials service's token for one tenant (or none), fetched when first asked for
   * (`getIdentity(service, 'app' | { tenantId })`); renewals then go through the refresher's lease.
   * Concurrent first asks in this process share one grant; across processes the later upsert
   * replaces the earlier token, both being valid. Undefined for any other kind or selector.
   */
  firstUse(serviceId: string, selector: IdentitySelector): Promise<FreshIdentity | undefined> {
    const filter = typeof selector === 'string' ? { userId: selector } : selector;
    const key = `${serviceId}\u0000${filter.tenantId ?? ''}`;
    const pending = this.firstUses.get(key);
    if (pending) return pending;
    const run = this.obtain(serviceId, filter).finally(() => this.firstUses.delete(key));
    this.firstUses.set(key, run);
    return run;
  }

  private async obtain(serviceId: string, filter: Exclude<IdentitySelector, string>): Promise<FreshIdentity | undefined> {
    const service = await this.store.getService(serviceId);
    if (!service || (await this.services.getProvider(service.provider_id)).kind !== 'oauth2_client_credentials') return undefined;
    if ((filter.userId ?? APP_USER_ID) !== APP_USER_ID || filter.tags || (filter.status && filter.status !== 'active')) return undefined;
    const tenantId = filter.tenantId === undefined ? '' : validate.tenantId(filter.tenantId);
    const ctx = await this.services.context(service, tenantId);
    const scope = this.services.scopes(service, ctx.provider).join(ctx.provider.scopes.separator);
    let tokens: TokenSet;
    try {
      tokens = await clientCredentialsGrant(ctx, scope, this.now);
    } catch (err) {
      throw err instanceof RefreshFailure ? toBrokerError(ctx, err.failure, { serviceId, id: '', userId: APP_USER_ID, tenantId }) : err;
    }
    const row = await this.write(service.id, tenantId, APP_USER_ID, {}, tokens, {});
    return toFresh(row, tokens);
  }

  private async write(
    serviceId: string,
    tenantId: string,
    userId: string,
    tags: Record<string, string>,
    tokens: TokenSet,
    profile: Profile,
  ): Promise<IdentityRow> {
    const { row, created } = await this.store.upsertIdentity(
      {
        service_id: serviceId,
        tenant_id: tenantId,
        user_id: userId,
        tags,
        expires_at: tokens.expiresAt,
        scope: tokens.scope ?? null,
        profile: JSON.stringify(profile),
        sealTokens: (id) => this.credentials.sealTokens(id, tokens),
      },
      () => newIdentityId(this.now()),
      this.now(),
    );
    await this.events.emit(created ? 'identity.created' : 'identity.updated', row, {});
    return row;
  }
}
