import { pino, type Logger } from 'pino';
import type {
  AuthorizationCompleted,
  AuthorizationStarted,
  BeginAuthorization,
  Broker,
  BrokerEvent,
  EventType,
  FreshIdentity,
  IdentityFilter,
  IdentitySelector,
  IdentitySummary,
  Page,
  Profile,
  PageRequest,
  ProviderSummary,
  PutIdentity,
  RegisterService,
  Service,
  ServiceInput,
} from './broker.js';
import { filterProviders, loadBuiltInCatalog, parseProvider, resolveProviderUrls, type ProviderFilter } from './catalog/index.js';
import { discoverProvider as discover } from './catalog/discovery.js';
import type { Provider, ProviderInput } from './catalog/schema.js';
import { AmbiguousIdentity, AuthorizationFailed, Conflict, EveryAuthError, InvalidInput, NotFound } from './errors.js';
import { isIdentityId, newEventId, newIdentityId, randomToken, sha256 } from './ids.js';
import {
  RefreshFailure,
  toBrokerError,
  buildAuthorizationUrl,
  clientContext,
  exchangeAuthorizationCode,
  isOpenIdFlow,
  readProfile,
  revokeToken,
  validateAuthorizationResponse,
  type ClientContext,
} from './oauth/engine.js';
import type { TokenSet } from './oauth/token-set.js';
import { DEFAULT_REFRESH_POLICY, Refresher, reauthError, tenantOf, type RefreshPolicy } from './refresh.js';
import type { EventRow, IdentityRow, ServiceRow, Store } from './store/store.js';
import { APP_USER_ID, clientCredentialsGrant, withHelpers, type Credential } from './kinds/index.js';
import * as oauth1 from './kinds/oauth1.js';
import { issuerFor, registerClient } from './kinds/registration.js';
import { checkCredential } from './kinds/put.js';
import * as validate from './validate.js';
import type { Vault } from './vault.js';

export interface LocalBrokerOptions {
  store: Store;
  vault: Vault;
  /** The public base URL the provider redirects back to: `${baseUrl}/${serviceId}/callback`. */
  baseUrl: string;
  /** Origins an absolute `finishedUrl` may point at. Relative paths are always allowed. */
  allowedRedirectOrigins?: string[];
  refresh?: Partial<RefreshPolicy>;
  /** Timeout of each request to a provider. */
  providerTimeoutMs?: number;
  /** How long a started authorization may take. */
  sessionTtlMs?: number;
  logger?: Logger;
  /** Called after each event is stored (webhooks, metrics). Errors thrown here are logged, not raised. */
  onEvent?: (event: BrokerEvent) => void | Promise<void>;
  now?: () => number;
}

interface SealedTokens {
  a: string;
  r?: string;
  i?: string;
  t: string;
  s?: string;
  n: Record<string, unknown>;
  /** Kind, credential and renewal material (absent: an OAuth 2 code-flow token set). */
  k?: TokenSet['kind'];
  c?: TokenSet['credential'];
  m?: TokenSet['material'];
  /** A non-Bearer Authorization scheme (the catalog's token.scheme). */
  h?: string;
}

/** What an authorization session keeps sealed: the PKCE verifier and nonce, or OAuth 1.0a's request token. */
interface SessionSecrets {
  codeVerifier?: string;
  nonce?: string;
  requestToken?: oauth1.RequestToken;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? undefined : new Date(ms).toISOString());

/** The broker over a store: what embedded mode runs in-process and what the server wraps. */
export class LocalBroker implements Broker {
  readonly store: Store;
  readonly vault: Vault;
  readonly refresher: Refresher;
  private readonly catalog: Map<string, Provider>;
  private readonly baseUrl: string;
  private readonly allowedOrigins: string[];
  private readonly timeoutMs: number;
  private readonly sessionTtlMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly onEvent?: LocalBrokerOptions['onEvent'];
  private lastPrune = 0;
  private readonly firstUse = new Map<string, Promise<IdentityRow | undefined>>();

  constructor(options: LocalBrokerOptions) {
    this.store = options.store;
    this.vault = options.vault;
    this.catalog = loadBuiltInCatalog();
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.allowedOrigins = [new URL(this.baseUrl).origin, ...(options.allowedRedirectOrigins ?? []).map((o) => new URL(o).origin)];
    this.timeoutMs = options.providerTimeoutMs ?? 10_000;
    this.sessionTtlMs = options.sessionTtlMs ?? 10 * 60_000;
    this.logger = options.logger ?? pino({ name: 'everyauth', level: 'warn' });
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent;
    this.refresher = new Refresher(
      this.store,
      { ...DEFAULT_REFRESH_POLICY, ...options.refresh },
      {
        context: async (row) => this.contextFor(await this.serviceRow(row.service_id), row.tenant_id),
        openTokens: (row) => this.openTokens(row),
        sealTokens: (id, tokens) => this.sealTokens(id, tokens),
        onRefreshed: (row) => this.emit('identity.refreshed', row, { expiresAt: iso(row.expires_at) }),
        onFailed: (row, error, needsReauth) =>
          this.emit(needsReauth ? 'identity.needs_reauth' : 'identity.refresh_failed', row, {
            error: (error as EveryAuthError).code ?? 'error',
            message: error.message,
          }),
      },
      this.now,
      this.logger,
    );
  }

  // ---- providers ----

  async listProviders(filter: ProviderFilter = {}): Promise<ProviderSummary[]> {
    const custom = new Set(await this.customProviders());
    return filterProviders([...this.catalog.values(), ...custom], filter).map((p) => ({
      id: p.id,
      name: p.name,
      docs: p.docs,
      kind: p.kind,
      ...(p.category ? { category: p.category } : {}),
      custom: custom.has(p),
    }));
  }

  async getProvider(id: string): Promise<Provider> {
    const builtIn = this.catalog.get(id);
    if (builtIn) return builtIn;
    const row = await this.store.getProvider(id);
    if (!row) throw new NotFound('provider', id);
    return parseProvider(JSON.parse(row.definition), `custom provider "${id}"`);
  }

  async putProvider(input: ProviderInput): Promise<Provider> {
    const provider = parseProvider(input, 'the provider definition');
    if (this.catalog.has(provider.id)) {
      throw new Conflict(`"${provider.id}" is a built-in provider; give the custom provider another id.`);
    }
    await this.store.putProvider(provider.id, JSON.stringify(provider), this.now());
    return provider;
  }

  async discoverProvider(id: string, issuer: string, options: { name?: string } = {}): Promise<Provider> {
    const provider = await discover(id, issuer, options);
    return this.putProvider(provider);
  }

  async deleteProvider(id: string): Promise<boolean> {
    if (this.catalog.has(id)) throw new InvalidInput(`"${id}" is a built-in provider and cannot be deleted.`, 'id');
    const users = await this.store.countServicesUsingProvider(id);
    if (users > 0) throw new Conflict(`Provider "${id}" is used by ${users} service(s); delete or change them first.`);
    return this.store.deleteProvider(id);
  }

  private async customProviders(): Promise<Provider[]> {
    const rows = await this.store.listProviders();
    return rows.map((r) => parseProvider(JSON.parse(r.definition), `custom provider "${r.id}"`));
  }

  // ---- services ----

  async putService(input: ServiceInput): Promise<Service> {
    const id = validate.serviceId(input.id, 'id');
    const existing = await this.store.getService(id);
    const providerId = input.providerId ?? existing?.provider_id ?? id;
    const provider = await this.getProvider(providerId).catch((err) => {
      if (err instanceof NotFound && !input.providerId && !existing) {
        throw new InvalidInput(
          `Service "${id}" needs a provider: "${id}" is not one; pass providerId (see the provider list).`,
          'providerId',
        );
      }
      throw err;
    });
    // A form or a service account is the user's own credential: no client of the app's is involved.
    const clientless = provider.kind === 'api_key' || provider.kind === 'basic' || provider.kind === 'jwt';
    const clientId = input.clientId ?? existing?.client_id ?? (clientless ? '' : undefined);
    if (clientId === undefined || (!clientId && !clientless))
      throw new InvalidInput(`Service "${id}" needs a clientId: the client id the provider issued for this app.`, 'clientId');
    const variables = input.variables ?? (existing ? (JSON.parse(existing.variables) as Record<string, string>) : {});
    resolveProviderUrls(provider, variables); // fails now, not at the first authorization, when a variable is missing
    let clientSecret = existing?.client_secret ?? null;
    if (input.clientSecret === null) clientSecret = null;
    else if (input.clientSecret !== undefined) {
      if (typeof input.clientSecret !== 'string' || input.clientSecret.length === 0) {
        throw new InvalidInput('clientSecret must be a non-empty string, or null to remove it.', 'clientSecret');
      }
      clientSecret = this.vault.seal(input.clientSecret, `service:${id}`);
    }
    const now = this.now();
    const row: ServiceRow = {
      id,
      provider_id: provider.id,
      client_id: clientId,
      client_secret: clientSecret,
      scopes: JSON.stringify(input.scopes ?? (existing ? JSON.parse(existing.scopes) : [])),
      params: JSON.stringify(input.params ?? (existing ? JSON.parse(existing.params) : {})),
      variables: JSON.stringify(variables),
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    await this.store.putService(row);
    return this.toService(row);
  }

  async registerService(input: RegisterService): Promise<Service> {
    const id = validate.serviceId(input.serviceId, 'serviceId');
    if (this.catalog.has(id)) throw new Conflict(`"${id}" is a built-in provider; give the registered service another id.`);
    const issuer = await issuerFor(input.url, this.timeoutMs);
    const provider = await discover(id, issuer, { name: input.name, timeoutMs: this.timeoutMs });
    // Registered before anything is stored: a server that refuses leaves no half-made provider behind.
    const client = await registerClient(provider, this.redirectUrl(id), this.timeoutMs);
    await this.putProvider(provider);
    return this.putService({
      id,
      providerId: provider.id,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      scopes: input.scopes,
    });
  }

  async getService(id: string): Promise<Service> {
    return this.toService(await this.serviceRow(id));
  }

  async listServices(): Promise<Service[]> {
    return (await this.store.listServices()).map((r) => this.toService(r));
  }

  deleteService(id: string): Promise<boolean> {
    return this.store.deleteService(id);
  }

  /** `finishedUrl` checked as beginAuthorization checks it (a path, or an allowed origin); throws InvalidInput. */
  checkFinishedUrl(url: string): string {
    return validate.finishedUrl(url, this.allowedOrigins);
  }

  /** The redirect URL a service's provider must have registered. */
  redirectUrl(serviceId: string): string {
    return `${this.baseUrl}/${encodeURIComponent(serviceId)}/callback`;
  }

  private async serviceRow(id: string): Promise<ServiceRow> {
    const row = await this.store.getService(id);
    if (!row) throw new NotFound('service', id);
    return row;
  }

  private toService(row: ServiceRow): Service {
    return {
      id: row.id,
      providerId: row.provider_id,
      clientId: row.client_id,
      hasClientSecret: row.client_secret !== null,
      scopes: JSON.parse(row.scopes),
      params: JSON.parse(row.params),
      variables: JSON.parse(row.variables),
      redirectUrl: this.redirectUrl(row.id),
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  /** A client-credentials tenant fills the provider's `{tenant}` variable (Microsoft's per-tenant token URL). */
  private async contextFor(service: ServiceRow, tenantId = ''): Promise<ClientContext> {
    const unresolved = await this.getProvider(service.provider_id);
    const variables = JSON.parse(service.variables) as Record<string, string>;
    if (tenantId && unresolved.kind === 'oauth2_client_credentials' && 'tenant' in unresolved.variables) variables.tenant = tenantId;
    const provider = resolveProviderUrls(unresolved, variables);
    const secret = service.client_secret === null ? undefined : this.vault.open(service.client_secret, `service:${service.id}`);
    return clientContext(provider, service.client_id, secret, this.timeoutMs);
  }

  /** An OAuth 1.0a service's consumer: its client id, and its secret or RSA private key. */
  private consumer(service: ServiceRow, provider: Provider): oauth1.Consumer {
    const secret = service.client_secret === null ? '' : this.vault.open(service.client_secret, `service:${service.id}`);
    return { consumerKey: service.client_id, consumerSecret: secret, signatureMethod: provider.oauth1!.signatureMethod };
  }

  private scopesFor(service: ServiceRow, provider: Provider): string[] {
    const scopes = JSON.parse(service.scopes) as string[];
    return scopes.length > 0 ? scopes : provider.scopes.default;
  }

  // ---- the authorization flow ----

  async beginAuthorization(input: BeginAuthorization): Promise<AuthorizationStarted> {
    const service = await this.serviceRow(validate.serviceId(input.serviceId));
    const userId = validate.userId(input.userId);
    const tenantId = input.tenantId === undefined ? '' : validate.tenantId(input.tenantId);
    const tags = validate.tags(input.tags);
    const finishedUrl = input.finishedUrl === undefined ? null : validate.finishedUrl(input.finishedUrl, this.allowedOrigins);
    const ctx = await this.contextFor(service);
    const scopes = this.scopesFor(service, ctx.provider);

    const state = randomToken();
    const stateHash = sha256(state);
    const redirectUri = this.redirectUrl(service.id);
    let url: string;
    let secrets: Record<string, unknown>;
    if (ctx.provider.kind === 'oauth1') {
      // OAuth 1.0a has no state parameter: ours rides on the callback URL the provider confirms (RFC 5849 §2.1).
      const requestToken = await oauth1.requestToken(
        ctx.provider,
        this.consumer(service, ctx.provider),
        validate.withQuery(redirectUri, { state }),
        this.timeoutMs,
      );
      url = oauth1.authorizationUrl(ctx.provider, requestToken);
      secrets = { requestToken };
    } else {
      const codeVerifier = randomToken();
      const nonce = isOpenIdFlow(ctx.provider, scopes) ? randomToken() : undefined;
      url = (await buildAuthorizationUrl(ctx, { redirectUri, state, scopes, params: JSON.parse(service.params), codeVerifier, nonce }))
        .href;
      secrets = { codeVerifier, nonce };
    }
    const now = this.now();
    this.pruneSessions(now);
    await this.store.insertSession({
      state_hash: stateHash,
      service_id: service.id,
      user_id: userId,
      tenant_id: tenantId,
      tags: JSON.stringify(tags),
      finished_url: finishedUrl,
      redirect_uri: redirectUri,
      secrets: this.vault.seal(JSON.stringify(secrets), `session:${stateHash}`),
      browser_binding: input.browserBinding ? sha256(input.browserBinding) : null,
      expires_at: now + this.sessionTtlMs,
      used_at: null,
      created_at: now,
    });
    return { url, state, expiresAt: new Date(now + this.sessionTtlMs).toISOString() };
  }

  /**
   * Deletes sessions expired for a day (the day keeps "expired" apart from "unknown" in callback
   * errors), at most every 10 minutes, off the request's path.
   */
  private pruneSessions(now: number): void {
    if (now - this.lastPrune < 10 * 60_000) return;
    this.lastPrune = now;
    this.store
      .pruneSessions(now - 24 * 3600_000)
      .catch((err: unknown) => this.logger.warn({ err }, 'pruning expired authorization sessions failed'));
  }

  async completeAuthorization(
    serviceId: string,
    query: URLSearchParams | Record<string, unknown>,
    options: { browserBinding?: string } = {},
  ): Promise<AuthorizationCompleted> {
    const params = toSearchParams(query);
    const state = params.get('state');
    if (!state) {
      throw new AuthorizationFailed(
        'invalid_request',
        'The callback has no "state": it did not come from an authorization EveryAuth started (RFC 6749 §10.12).',
      );
    }
    if (params.getAll('state').length > 1 || params.getAll('code').length > 1) {
      throw new AuthorizationFailed(
        'invalid_request',
        'The callback repeats "state" or "code" (RFC 6749 §3.1: parameters must not be included more than once).',
      );
    }
    const stateHash = sha256(state);
    const taken = await this.store.takeSession(stateHash, this.now());
    if (!taken.ok) {
      const why = {
        unknown: 'is unknown: the link was forged or belongs to another EveryAuth',
        used: 'was already used: an authorization response can be completed once',
        expired: 'has expired: authorizations must finish within the session lifetime',
      }[taken.reason];
      throw new AuthorizationFailed('invalid_request', `The callback's "state" ${why}. Start the authorization again.`);
    }
    const session = taken.session;
    const context = {
      serviceId: session.service_id,
      userId: session.user_id,
      tenantId: session.tenant_id || undefined,
      finishedUrl: session.finished_url ?? undefined,
    };
    const fail = (error: string, description: string): never => {
      throw new AuthorizationFailed(error, description, {
        ...context,
        finishedUrl: session.finished_url
          ? validate.withQuery(session.finished_url, {
              error,
              error_description: description,
              serviceId: session.service_id,
              userId: session.user_id,
              tenantId: context.tenantId,
            })
          : undefined,
      });
    };
    try {
      if (session.service_id !== serviceId) {
        fail(
          'invalid_request',
          `The callback arrived for service "${serviceId}" but the authorization was started for another service (a mix-up, RFC 9700 §4.4).`,
        );
      }
      if (session.browser_binding !== null && (!options.browserBinding || sha256(options.browserBinding) !== session.browser_binding)) {
        fail(
          'invalid_request',
          'The callback came from a different browser than the one that started the authorization (RFC 9700 §4.7); start again from the same browser.',
        );
      }
      const service = await this.serviceRow(session.service_id);
      const ctx = await this.contextFor(service);
      const secrets = JSON.parse(this.vault.open(session.secrets, `session:${stateHash}`)) as SessionSecrets;
      const { tokens, profile } = await this.exchange(ctx, service, session.redirect_uri, params, secrets);
      const tags = JSON.parse(session.tags) as Record<string, string>;
      const scope = tokens.scope ?? this.scopesFor(service, ctx.provider).join(' ');
      const row = await this.storeIdentity(service.id, session.tenant_id, session.user_id, tags, { ...tokens, scope }, profile);
      return {
        identity: this.toSummary(row),
        finishedUrl: session.finished_url
          ? validate.withQuery(session.finished_url, { userId: session.user_id, tenantId: context.tenantId, serviceId: session.service_id })
          : undefined,
      };
    } catch (err) {
      if (err instanceof AuthorizationFailed && err.context.finishedUrl) throw err;
      const error = err instanceof AuthorizationFailed ? err.error : 'server_error';
      const description = err instanceof EveryAuthError ? err.message : 'The authorization could not be completed.';
      if (!(err instanceof EveryAuthError)) this.logger.error({ err, serviceId: session.service_id }, 'authorization callback failed');
      return fail(error, description);
    }
  }

  /** The callback's parameters into tokens and the account's profile, by the provider's kind. */
  private async exchange(
    ctx: ClientContext,
    service: ServiceRow,
    redirectUri: string,
    params: URLSearchParams,
    secrets: SessionSecrets,
  ): Promise<{ tokens: TokenSet; profile: Profile }> {
    if (ctx.provider.kind === 'oauth1') {
      const tokens = await oauth1.accessToken(
        ctx.provider,
        this.consumer(service, ctx.provider),
        secrets.requestToken!,
        params,
        this.timeoutMs,
      );
      // Only the access-token response can name the account without a signed API call.
      return { tokens, profile: ctx.provider.profile?.source === 'token_response' ? await readProfile(ctx, tokens, undefined) : {} };
    }
    const validated = validateAuthorizationResponse(ctx, params);
    if (!validated.get('code'))
      throw new AuthorizationFailed('invalid_request', 'The callback has no authorization "code" (RFC 6749 §4.1.2).');
    const { codeVerifier = '', nonce } = secrets;
    const { tokens, idTokenClaims } = await exchangeAuthorizationCode(ctx, validated, { redirectUri, codeVerifier, nonce }, this.now);
    return { tokens, profile: await readProfile(ctx, tokens, idTokenClaims) };
  }

  // ---- identities ----

  async findIdentity(serviceId: string, selector: IdentitySelector): Promise<IdentitySummary | undefined> {
    const row = await this.findRow(serviceId, selector);
    return row && this.toSummary(row);
  }

  async listIdentities(serviceId: string | undefined, filter?: IdentityFilter, page: PageRequest = {}): Promise<Page<IdentitySummary>> {
    const count = validate.pageCount(page.count);
    const after = page.next === undefined ? undefined : decodeCursor(page.next);
    const rows = await this.store.listIdentities(
      { ...validate.identityFilter(filter), ...(serviceId === undefined ? {} : { serviceId: validate.serviceId(serviceId) }) },
      after,
      count + 1,
    );
    const items = rows.slice(0, count).map((r) => this.toSummary(r));
    return rows.length > count ? { items, next: encodeCursor(items[items.length - 1]!.id) } : { items };
  }

  async deleteIdentity(identityId: string, options: { revoke?: boolean } = {}): Promise<boolean> {
    const row = await this.store.getIdentity(validate.lookupId(identityId));
    if (!row) return false;
    if (options.revoke) await this.revoke(row);
    const deleted = await this.store.deleteIdentity(row.id);
    if (deleted) await this.emit('identity.deleted', row, { revoked: options.revoke === true });
    return deleted;
  }

  async deleteIdentities(serviceId: string, filter: IdentityFilter | null, options: { revoke?: boolean } = {}): Promise<number> {
    const checked = filter === null ? {} : validate.identityFilter(filter);
    if (filter !== null && validate.isEmptyFilter(checked)) {
      throw new InvalidInput('An empty filter would delete every identity of the service; pass null to mean that explicitly.', 'filter');
    }
    let deleted = 0;
    for (;;) {
      const rows = await this.store.listIdentities({ ...checked, serviceId: validate.serviceId(serviceId) }, undefined, 500);
      if (rows.length === 0) return deleted;
      for (const row of rows) if (await this.deleteIdentity(row.id, options)) deleted++;
    }
  }

  async getIdentity(serviceId: string, selector: IdentitySelector, options: { force?: boolean } = {}): Promise<FreshIdentity | undefined> {
    let row = (await this.findRow(serviceId, selector)) ?? (await this.obtainOnFirstUse(serviceId, selector));
    if (!row) return undefined;
    if (row.status !== 'active') throw reauthError(row);
    if (options.force || this.refresher.needsRefresh(row)) row = await this.refresher.refresh(row, options.force);
    return this.toFresh(row);
  }

  async putIdentity(input: PutIdentity): Promise<IdentitySummary> {
    const service = await this.serviceRow(validate.serviceId(input.serviceId));
    const userId = validate.userId(input.userId);
    const tenantId = input.tenantId === undefined ? '' : validate.tenantId(input.tenantId);
    const tags = validate.tags(input.tags);
    const ctx = await this.contextFor(service);
    const variables = JSON.parse(service.variables) as Record<string, string>;
    const scopes = this.scopesFor(service, ctx.provider);
    const { tokens, profile } = await checkCredential(ctx, input, { variables, scopes }, this.now);
    return this.toSummary(await this.storeIdentity(service.id, tenantId, userId, tags, tokens, profile));
  }

  /**
   * A client-credentials service's token for one tenant (or none), fetched when first asked for;
   * later renewals go through the refresher's lease. Concurrent first asks in this process share
   * one grant; across processes the later upsert replaces the earlier token, both being valid.
   */
  private obtainOnFirstUse(serviceId: string, selector: IdentitySelector): Promise<IdentityRow | undefined> {
    const filter = typeof selector === 'string' ? { userId: selector } : selector;
    const key = `${serviceId}\u0000${filter.tenantId ?? ''}`;
    const pending = this.firstUse.get(key);
    if (pending) return pending;
    const run = (async () => {
      const service = await this.store.getService(serviceId);
      if (!service || (await this.getProvider(service.provider_id)).kind !== 'oauth2_client_credentials') return undefined;
      if ((filter.userId ?? APP_USER_ID) !== APP_USER_ID || filter.tags || (filter.status && filter.status !== 'active')) return undefined;
      const tenantId = filter.tenantId === undefined ? '' : validate.tenantId(filter.tenantId);
      const ctx = await this.contextFor(service, tenantId);
      const scope = this.scopesFor(service, ctx.provider).join(ctx.provider.scopes.separator);
      const tokens = await clientCredentialsGrant(ctx, scope, this.now).catch((err: unknown) => {
        throw err instanceof RefreshFailure ? toBrokerError(ctx, err.failure, { serviceId, id: '', userId: APP_USER_ID, tenantId }) : err;
      });
      return this.storeIdentity(service.id, tenantId, APP_USER_ID, {}, tokens, {});
    })().finally(() => this.firstUse.delete(key));
    this.firstUse.set(key, run);
    return run;
  }

  private async storeIdentity(
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
        sealTokens: (id) => this.sealTokens(id, tokens),
      },
      () => newIdentityId(this.now()),
      this.now(),
    );
    await this.emit(created ? 'identity.created' : 'identity.updated', row, {});
    return row;
  }

  async listEvents(options: { after?: string; count?: number; identityId?: string } = {}): Promise<BrokerEvent[]> {
    const rows = await this.store.listEvents({
      after: options.after,
      identityId: options.identityId,
      limit: validate.pageCount(options.count),
    });
    return rows.map(toEvent);
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private async findRow(serviceId: string, selector: IdentitySelector): Promise<IdentityRow | undefined> {
    validate.serviceId(serviceId);
    // The token-read path: a plain id is only ever a bound parameter, so it needs no more than the
    // text check (NUL breaks PostgreSQL; a lone surrogate would match another user's U+FFFD).
    if (typeof selector === 'string' && selector.length > 0) {
      validate.lookupId(selector);
      if (isIdentityId(selector)) {
        const row = await this.store.getIdentity(selector);
        return row?.service_id === serviceId ? row : undefined;
      }
      const rows = await this.store.findIdentities({ serviceId, userId: selector }, 2);
      if (rows.length > 1) throw new AmbiguousIdentity(serviceId, rows.length);
      return rows[0];
    }
    const filter = validate.identityFilter(typeof selector === 'string' ? { userId: selector } : selector);
    if (validate.isEmptyFilter(filter))
      throw new InvalidInput('Name the identity: an identity id, a userId, or a filter with userId, tenantId or tags.', 'selector');
    const rows = await this.store.findIdentities({ ...filter, serviceId }, 2);
    if (rows.length > 1) throw new AmbiguousIdentity(serviceId, rows.length);
    return rows[0];
  }

  private async revoke(row: IdentityRow): Promise<void> {
    const ctx = await this.contextFor(await this.serviceRow(row.service_id));
    const tokens = this.openTokens(row);
    // Revoking the refresh token ends the whole grant at providers that follow RFC 7009 §2.1.
    if (tokens.refreshToken) await revokeToken(ctx, tokens.refreshToken, 'refresh_token');
    else await revokeToken(ctx, tokens.accessToken, 'access_token');
  }

  // ---- rows to API shapes ----

  private sealTokens(identityId: string, t: TokenSet): string {
    const sealed: SealedTokens = {
      a: t.accessToken,
      r: t.refreshToken,
      i: t.idToken,
      t: t.tokenType,
      s: t.scope,
      n: t.native,
      k: t.kind,
      c: t.credential,
      m: t.material,
      h: t.scheme,
    };
    return this.vault.seal(JSON.stringify(sealed), `identity:${identityId}`);
  }

  private openTokens(row: IdentityRow): TokenSet {
    const s = JSON.parse(this.vault.open(row.tokens, `identity:${row.id}`)) as SealedTokens;
    return {
      accessToken: s.a,
      refreshToken: s.r,
      idToken: s.i,
      tokenType: s.t,
      scope: s.s,
      expiresAt: row.expires_at,
      native: s.n,
      kind: s.k,
      credential: s.c,
      material: s.m,
      scheme: s.h,
    };
  }

  private toSummary(row: IdentityRow): IdentitySummary {
    return {
      id: row.id,
      serviceId: row.service_id,
      userId: row.user_id,
      tenantId: tenantOf(row),
      tags: JSON.parse(row.tags),
      status: row.status,
      profile: JSON.parse(row.profile),
      scope: row.scope ?? undefined,
      expiresAt: iso(row.expires_at),
      lastRefreshAt: iso(row.last_refresh_at),
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  private toFresh(row: IdentityRow): FreshIdentity {
    const tokens = this.openTokens(row);
    const scheme = tokens.scheme ? { scheme: tokens.scheme } : {};
    const credential: Credential =
      tokens.credential ?? ({ type: tokens.kind ?? 'oauth2', accessToken: tokens.accessToken, ...scheme } as Credential);
    return withHelpers({
      ...(tokens.credential ? {} : { accessToken: tokens.accessToken }),
      credential,
      expiresAt: iso(row.expires_at),
      identityId: row.id,
      serviceId: row.service_id,
      userId: row.user_id,
      tenantId: tenantOf(row),
      tags: parseObject(row.tags),
      profile: parseObject(row.profile),
      native: tokens.native,
    });
  }

  private async emit(type: EventType, row: IdentityRow, data: Record<string, unknown>): Promise<void> {
    const at = this.now();
    const event: EventRow = {
      id: newEventId(at),
      type,
      service_id: row.service_id,
      identity_id: row.id,
      user_id: row.user_id,
      tenant_id: row.tenant_id,
      data: JSON.stringify(data),
      at,
    };
    await this.store.insertEvent(event);
    if (this.onEvent) {
      try {
        await this.onEvent(toEvent(event));
      } catch (err) {
        this.logger.error({ err, eventId: event.id }, 'event listener failed');
      }
    }
  }
}

/** JSON.parse for the stored objects, skipping the parser for the common empty one. */
const parseObject = (json: string) => (json === '{}' ? {} : JSON.parse(json));

function toEvent(row: EventRow): BrokerEvent {
  return {
    id: row.id,
    type: row.type as EventType,
    serviceId: row.service_id,
    identityId: row.identity_id,
    userId: row.user_id,
    tenantId: row.tenant_id || undefined,
    at: new Date(row.at).toISOString(),
    data: JSON.parse(row.data),
  };
}

function toSearchParams(query: URLSearchParams | Record<string, unknown>): URLSearchParams {
  if (query instanceof URLSearchParams) return query;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (typeof v === 'string') params.append(k, v);
    else if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
  }
  return params;
}

const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');

function decodeCursor(next: string): string {
  const id = Buffer.from(next, 'base64url').toString();
  if (!isIdentityId(id)) throw new InvalidInput('next is not a cursor from a previous page.', 'next');
  return id;
}
