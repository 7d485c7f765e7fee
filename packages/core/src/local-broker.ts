import { pino, type Logger } from 'pino';
import type {
  AuthorizationCompleted,
  AuthorizationStarted,
  BeginAuthorization,
  Broker,
  BrokerEvent,
  FetchInit,
  FreshIdentity,
  GetIdentityOptions,
  HostedSession,
  IdentityCheck,
  IdentityFilter,
  IdentitySelector,
  IdentityUpdate,
  IdentitySummary,
  Page,
  PageRequest,
  ProviderSummary,
  ReconnectLinkOptions,
  PutIdentity,
  RegisterService,
  Service,
  ServiceInput,
} from './broker.js';
import type { ProviderFilter } from './catalog/index.js';
import type { Provider, ProviderInput } from './catalog/schema.js';
import { Connect } from './connect.js';
import { Credentials } from './credentials.js';
import { DEFAULT_DEAD_AFTER_DAYS, markDeadIdentities } from './dead-state.js';
import { ConfigurationError, NotFound, ReauthorizationRequired } from './errors.js';
import { Health, type CheckDueOptions } from './health.js';
import { KeepAlive, type RenewIdleOptions } from './keep-alive.js';
import { Events, type EventListener } from './events.js';
import { Flow } from './flow.js';
import { Identities } from './identities.js';
import { CredentialProxy, toResponse, type ProxiedResponse, type ProxyInit, type ProxyOptions } from './proxy/fetch.js';
import { ProxySubjects } from './proxy/subject.js';
import { DEFAULT_REFRESH_POLICY, Refresher, type RefreshExpiringOptions, type RefreshPolicy } from './refresher.js';
import { Services } from './services.js';
import type { Store } from './store/store.js';
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
  /** Timeouts, retry budget and body limits of `fetch`, the credential-injecting proxy. */
  proxy?: Partial<ProxyOptions>;
  /** Called after each event is stored (webhooks, metrics). Errors thrown here are logged, not raised. */
  onEvent?: EventListener;
  /** Days of failed refreshes after which an identity becomes `dead` (default 7). */
  deadAfterDays?: number;
  /**
   * Makes the reconnect link put on ReauthorizationRequired (`reconnectUrl`) for an identity that
   * needs re-authorization; the server gives its hosted reconnect link, express its own route.
   */
  reconnectUrl?: (
    identity: { id: string; serviceId: string; userId: string; tenantId?: string },
    options?: ReconnectLinkOptions,
  ) => string | undefined;
  now?: () => number;
}

/**
 * The broker over a store: what embedded mode runs in-process and what the server wraps. A facade:
 * each method hands its job to the collaborator that owns the concept (see docs/architecture.md).
 */
export class LocalBroker implements Broker {
  readonly store: Store;
  readonly vault: Vault;
  /** The app serves the provider's callback (`completeAuthorization` runs in-process). */
  readonly flowHost = 'app' as const;
  private readonly services: Services;
  private readonly flow: Flow;
  private readonly identities: Identities;
  private readonly refresher: Refresher;
  private readonly events: Events;
  private readonly health: Health;
  private readonly keepAlive: KeepAlive;
  private readonly now: () => number;
  private readonly deadAfterMs: number;
  private readonly reconnectUrl?: LocalBrokerOptions['reconnectUrl'];
  private readonly connect: Connect;
  private readonly proxy: CredentialProxy;
  private readonly proxySubjects: ProxySubjects;

  constructor(options: LocalBrokerOptions) {
    this.store = options.store;
    this.vault = options.vault;
    const store = options.store;
    const now = options.now ?? Date.now;
    const logger = options.logger ?? pino({ name: 'everyauth', level: 'warn' });
    const baseUrl = options.baseUrl.replace(/\/+$/, '');
    const credentials = new Credentials(options.vault);
    this.events = new Events(store, logger, now, options.onEvent);
    this.proxy = new CredentialProxy(options.proxy);
    this.services = new Services(store, credentials, {
      baseUrl,
      providerTimeoutMs: options.providerTimeoutMs ?? 10_000,
      apiAgents: this.proxy.agents,
      now,
    });
    this.refresher = new Refresher({
      store,
      credentials,
      services: this.services,
      events: this.events,
      policy: { ...DEFAULT_REFRESH_POLICY, ...options.refresh },
      now,
      logger,
    });
    this.flow = new Flow(store, credentials, this.services, this.events, {
      allowedOrigins: [new URL(baseUrl).origin, ...(options.allowedRedirectOrigins ?? []).map((o) => new URL(o).origin)],
      sessionTtlMs: options.sessionTtlMs ?? 10 * 60_000,
      now,
      logger,
    });
    this.identities = new Identities(store, credentials, this.services, this.refresher, this.events, now);
    this.health = new Health(store, this.services, this.identities, this.events, {
      timeoutMs: options.providerTimeoutMs ?? 10_000,
      now,
    });
    this.keepAlive = new KeepAlive(store, this.services, this.refresher, now);
    this.now = now;
    this.deadAfterMs = (options.deadAfterDays ?? DEFAULT_DEAD_AFTER_DAYS) * 24 * 3600_000;
    this.reconnectUrl = options.reconnectUrl;
    this.connect = new Connect(store, credentials, this.services, this.events, now);
    this.proxySubjects = new ProxySubjects({
      store,
      services: this.services,
      identities: this.identities,
      refresher: this.refresher,
      credentials,
      events: this.events,
      now,
    });
  }

  // ---- providers and services ----

  listProviders(filter?: ProviderFilter): Promise<ProviderSummary[]> {
    return this.services.listProviders(filter);
  }

  getProvider(id: string): Promise<Provider> {
    return this.services.getProvider(id);
  }

  putProvider(input: ProviderInput): Promise<Provider> {
    return this.services.putProvider(input);
  }

  discoverProvider(id: string, issuer: string, options?: { name?: string }): Promise<Provider> {
    return this.services.discoverProvider(id, issuer, options);
  }

  deleteProvider(id: string): Promise<boolean> {
    return this.services.deleteProvider(id);
  }

  putService(input: ServiceInput): Promise<Service> {
    return this.services.putService(input);
  }

  registerService(input: RegisterService): Promise<Service> {
    return this.services.registerService(input);
  }

  getService(id: string): Promise<Service> {
    return this.services.getService(id);
  }

  listServices(): Promise<Service[]> {
    return this.services.listServices();
  }

  deleteService(id: string): Promise<boolean> {
    return this.services.deleteService(id);
  }

  /** The redirect URL a service's provider must have registered. */
  redirectUrl(serviceId: string): string {
    return this.services.redirectUrl(serviceId);
  }

  // ---- the authorization flow ----

  beginAuthorization(input: BeginAuthorization): Promise<AuthorizationStarted> {
    return this.flow.begin(input);
  }

  completeAuthorization(
    serviceId: string,
    query: URLSearchParams | Record<string, unknown>,
    options?: { browserBinding?: string },
  ): Promise<AuthorizationCompleted> {
    return this.flow.complete(serviceId, query, options);
  }

  /**
   * Refused: an embedded broker has no page of its own to start a flow from. The app serves the
   * callback, so it starts flows with beginAuthorization and a browser binding (what
   * `@everyauth/express` does); a server's RemoteBroker hosts them instead.
   */
  async createSession(_input: Omit<BeginAuthorization, 'browserBinding'>): Promise<HostedSession> {
    throw new ConfigurationError(
      'createSession needs a broker that hosts the flow (a RemoteBroker on an EveryAuth server); with a LocalBroker the app serves the callback: call beginAuthorization with a browserBinding instead.',
    );
  }

  /** `finishedUrl` checked as beginAuthorization checks it (the hosted credential form, connect and reconnect links use it). */
  checkFinishedUrl(url: string): string {
    return this.flow.checkFinishedUrl(url);
  }

  // ---- identities ----

  async getIdentity(serviceId: string, selector: IdentitySelector, options: GetIdentityOptions = {}): Promise<FreshIdentity | undefined> {
    try {
      // A client-credentials service's token is fetched here the first time it is asked for.
      return (await this.identities.get(serviceId, selector, options)) ?? (await this.connect.firstUse(serviceId, selector));
    } catch (err) {
      if (err instanceof ReauthorizationRequired && !err.reconnectUrl && this.reconnectUrl) {
        err.reconnectUrl = this.reconnectUrl({ id: err.identityId, serviceId: err.serviceId, userId: err.userId, tenantId: err.tenantId });
      }
      throw err;
    }
  }

  /**
   * The reconnect link from the `reconnectUrl` option (express gives its own route); without one,
   * ConfigurationError, as an embedded broker has no page of its own to start a flow from.
   */
  async createReconnectLink(identityId: string, options: ReconnectLinkOptions = {}): Promise<HostedSession> {
    const identity = await this.identities.findById(identityId);
    if (!identity) throw new NotFound('identity', identityId);
    const url = this.reconnectUrl?.(identity, options);
    if (!url)
      throw new ConfigurationError(
        'createReconnectLink needs a broker that hosts the flow (a RemoteBroker on an EveryAuth server), or a LocalBroker given the reconnectUrl option (what @everyauth/express sets).',
      );
    return { url, expiresAt: new Date(this.now() + (options.lifetimeMinutes ?? 7 * 24 * 60) * 60_000).toISOString() };
  }

  updateIdentity(identityId: string, update: IdentityUpdate): Promise<IdentitySummary | undefined> {
    return this.identities.update(identityId, update);
  }

  checkIdentity(identityId: string): Promise<IdentityCheck> {
    return this.health.check(identityId);
  }

  /** One round of scheduled health checks (the server's background loop). Returns how many it checked. */
  checkDueIdentities(options: CheckDueOptions): Promise<number> {
    return this.health.checkDue(options);
  }

  /** One keep-alive round: identities of providers with an idle limit, renewed before it. Returns how many refreshes it started. */
  renewIdleIdentities(options?: RenewIdleOptions): Promise<number> {
    return this.keepAlive.renewIdle(options);
  }

  /** Identities failing for the configured days become `dead` (`identity.dead` each). Returns how many. */
  markDeadIdentities(): Promise<number> {
    return markDeadIdentities(this.store, this.events, this.now(), this.deadAfterMs);
  }

  /** Identity counts per service and status (metrics). */
  countIdentities(): Promise<{ serviceId: string; status: string; count: number }[]> {
    return this.store.countIdentities().then((rows) => rows.map((r) => ({ serviceId: r.service_id, status: r.status, count: r.n })));
  }

  putIdentity(input: PutIdentity): Promise<IdentitySummary> {
    return this.connect.put(input);
  }

  findIdentity(serviceId: string, selector: IdentitySelector): Promise<IdentitySummary | undefined> {
    return this.identities.find(serviceId, selector);
  }

  /** One identity by its id alone (the server's `GET /v1/identities/{id}`); undefined when there is none. */
  findIdentityById(identityId: string): Promise<IdentitySummary | undefined> {
    return this.identities.findById(identityId);
  }

  listIdentities(serviceId: string | undefined, filter?: IdentityFilter, page?: PageRequest): Promise<Page<IdentitySummary>> {
    return this.identities.list(serviceId, filter, page);
  }

  deleteIdentity(identityId: string, options?: { revoke?: boolean }): Promise<boolean> {
    return this.identities.delete(identityId, options);
  }

  deleteIdentities(serviceId: string, filter: IdentityFilter | null, options?: { revoke?: boolean }): Promise<number> {
    return this.identities.deleteMany(serviceId, filter, options);
  }

  /**
   * One round of refresh ahead of expiry (the server's background refresh): identities whose token
   * expires within `aheadMs`, each through the same leased, fenced refresh as a token read.
   * Returns how many refreshes it started.
   */
  refreshExpiring(options: RefreshExpiringOptions): Promise<number> {
    return this.refresher.refreshExpiring(options);
  }

  listEvents(options?: { after?: string; count?: number; identityId?: string }): Promise<BrokerEvent[]> {
    return this.events.list(options);
  }

  async fetch(serviceId: string, who: IdentitySelector, pathOrUrl: string, init?: FetchInit): Promise<Response> {
    return toResponse(await this.forward(serviceId, who, pathOrUrl, init));
  }

  /**
   * `fetch` one level down, by the same rules: the API's status, the header fields the caller may
   * see, and its body as a Node stream. The server's proxy route pipes that straight into its reply
   * (no web stream in between), and may pass a Node request's header fields as they were parsed.
   */
  async forward(serviceId: string, who: IdentitySelector, pathOrUrl: string, init?: ProxyInit): Promise<ProxiedResponse> {
    return this.proxy.request(await this.proxySubjects.for(serviceId, who), pathOrUrl, init);
  }

  async close(): Promise<void> {
    await this.proxy.close();
    await this.store.close();
  }
}
