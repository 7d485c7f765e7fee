/**
 * Providers and services: the built-in catalog and custom providers, each service's configuration
 * (client id, sealed client secret, scopes, parameters, variables), and the client context the
 * OAuth engine needs to talk to a service's provider.
 */
import type { ProviderSummary, RegisterService, Service, ServiceInput } from './broker.js';
import { discoverProvider as discover } from './catalog/discovery.js';
import {
  filterProviders,
  loadBuiltInCatalog,
  parseProvider,
  resolveApiUrls,
  resolveProviderUrls,
  type CatalogEntry,
  type ProviderFilter,
} from './catalog/index.js';
import { placeholders, variablesChooseHosts } from './catalog/kinds.js';
import type { ApiAgents } from './proxy/agents.js';
import type { Provider, ProviderInput } from './catalog/schema.js';
import type { Credentials } from './credentials.js';
import { Conflict, InvalidInput, NotFound, ProxyRefused } from './errors.js';
import { clientContext, type ClientContext } from './oauth/engine.js';
import { apiBase } from './proxy/target.js';
import type { ProviderRow, ServiceRow, Store } from './store/store.js';
import type { Consumer } from './kinds/oauth1.js';
import { issuerFor, registerClient } from './kinds/registration.js';
import * as validate from './validate.js';

export interface ServicesOptions {
  /** The public base URL the provider redirects back to: `${baseUrl}/${serviceId}/callback`. */
  baseUrl: string;
  /** Timeout of each request to a provider. */
  providerTimeoutMs: number;
  /** The connection pools to providers' APIs, with the resolved-address rule (the proxy's): the test request of a typed-in credential goes through them. */
  apiAgents: ApiAgents;
  now: () => number;
}

/**
 * A service's API base URLs, canonical: fixed, or completed by the identity's non-secret values
 * (read only when the service's provider refers to one).
 */
export type ApiBases = (identityValues: () => Record<string, string>) => string[];

/** The versions (`updated_at`) a cached client context was built from: the service's, and its custom provider's (null for a built-in one). */
export interface ContextVersions {
  serviceVersion: number | null;
  providerVersion: number | null;
}

/** A service's client context (for no tenant), with what it was built from. */
interface CachedContext extends ContextVersions {
  service: ServiceRow;
  provider: Provider;
  context: ClientContext;
}

export class Services {
  private readonly catalog: Map<string, CatalogEntry> = loadBuiltInCatalog();
  /**
   * Custom providers as parsed, with the stored definition they came from: zod runs once per edit, not per read.
   * Shared like the built-in entries, so callers copy rather than change them (resolveProviderUrls does).
   */
  private readonly parsed = new Map<string, { definition: string; provider: Provider }>();
  /** Each service's API base URLs, with what they were made from (see `apiBases`). */
  private readonly bases = new Map<string, { source: string | Provider; variables: string; bases: ApiBases }>();
  /** The refresher's client contexts by service id: checked against the versions each lease claim reads. */
  private readonly contexts = new Map<string, CachedContext>();
  private readonly baseUrl: string;

  constructor(
    private readonly store: Store,
    private readonly credentials: Credentials,
    private readonly options: ServicesOptions,
  ) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
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
      ...((p as CatalogEntry).aliasOf ? { aliasOf: (p as CatalogEntry).aliasOf } : {}),
    }));
  }

  async getProvider(id: string): Promise<Provider> {
    return (await this.versionedProvider(id)).provider;
  }

  /** A provider with the version of its row: null for a built-in one. */
  private async versionedProvider(id: string): Promise<{ provider: Provider; version: number | null }> {
    const builtIn = this.catalog.get(id);
    if (builtIn) return { provider: builtIn, version: null };
    const row = await this.store.getProvider(id);
    if (!row) throw new NotFound('provider', id);
    return { provider: this.parsedProvider(row), version: row.updated_at };
  }

  private parsedProvider(row: ProviderRow): Provider {
    const cached = this.parsed.get(row.id);
    if (cached?.definition === row.definition) return cached.provider;
    const provider = parseProvider(JSON.parse(row.definition), `custom provider "${row.id}"`);
    this.parsed.set(row.id, { definition: row.definition, provider });
    return provider;
  }

  async putProvider(input: ProviderInput): Promise<Provider> {
    const provider = parseProvider(input, 'the provider definition');
    if (this.catalog.has(provider.id)) {
      throw new Conflict(`"${provider.id}" is a built-in provider; give the custom provider another id.`);
    }
    await this.store.putProvider(provider.id, JSON.stringify(provider), this.options.now());
    return provider;
  }

  async discoverProvider(id: string, issuer: string, options: { name?: string } = {}): Promise<Provider> {
    return this.putProvider(await discover(id, issuer, options));
  }

  async deleteProvider(id: string): Promise<boolean> {
    if (this.catalog.has(id)) throw new InvalidInput(`"${id}" is a built-in provider and cannot be deleted.`, 'id');
    const users = await this.store.countServicesUsingProvider(id);
    if (users > 0) throw new Conflict(`Provider "${id}" is used by ${users} service(s); delete or change them first.`);
    this.parsed.delete(id);
    return this.store.deleteProvider(id);
  }

  private async customProviders(): Promise<Provider[]> {
    const rows = await this.store.listProviders();
    return rows.map((r) => this.parsedProvider(r));
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
    const apiBaseUrls: unknown =
      input.apiBaseUrls !== undefined ? input.apiBaseUrls : existing?.api_base_urls ? JSON.parse(existing.api_base_urls) : null;
    if (
      apiBaseUrls !== null &&
      (!Array.isArray(apiBaseUrls) || apiBaseUrls.length === 0 || apiBaseUrls.some((u) => typeof u !== 'string'))
    ) {
      throw new InvalidInput("apiBaseUrls must be a non-empty list of https URLs, or null to use the provider's.", 'apiBaseUrls');
    }
    resolveProviderUrls(provider, variables); // fails now, not at the first authorization, when a variable is missing
    let clientSecret = existing?.client_secret ?? null;
    if (input.clientSecret === null) clientSecret = null;
    else if (input.clientSecret !== undefined) {
      if (typeof input.clientSecret !== 'string' || input.clientSecret.length === 0) {
        throw new InvalidInput('clientSecret must be a non-empty string, or null to remove it.', 'clientSecret');
      }
      clientSecret = this.credentials.sealClientSecret(id, input.clientSecret);
    }
    const now = this.options.now();
    const row: ServiceRow = {
      id,
      provider_id: provider.id,
      client_id: clientId,
      client_secret: clientSecret,
      scopes: JSON.stringify(input.scopes ?? (existing ? JSON.parse(existing.scopes) : [])),
      params: JSON.stringify(input.params ?? (existing ? JSON.parse(existing.params) : {})),
      variables: JSON.stringify(variables),
      api_base_urls: apiBaseUrls === null ? null : JSON.stringify((apiBaseUrls as string[]).map((u) => apiBase(u, id))),
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    await this.store.putService(row);
    return this.toService(row);
  }

  async getService(id: string): Promise<Service> {
    return this.toService(await this.row(id));
  }

  async listServices(): Promise<Service[]> {
    return (await this.store.listServices()).map((r) => this.toService(r));
  }

  deleteService(id: string): Promise<boolean> {
    this.bases.delete(id);
    this.contexts.delete(id);
    return this.store.deleteService(id);
  }

  /** The redirect URL a service's provider must have registered. */
  redirectUrl(serviceId: string): string {
    return `${this.baseUrl}/${encodeURIComponent(serviceId)}/callback`;
  }

  /** The stored service; NotFound when there is none. */
  async row(id: string): Promise<ServiceRow> {
    const row = await this.store.getService(id);
    if (!row) throw new NotFound('service', id);
    return row;
  }

  /**
   * What the OAuth engine needs to talk to the service's provider: endpoints, client id, opened
   * secret. A client-credentials identity's tenant fills the provider's `{tenant}` variable
   * (Microsoft's per-tenant token URL).
   */
  async context(service: ServiceRow, tenantId = ''): Promise<ClientContext> {
    return this.build(service, await this.getProvider(service.provider_id), tenantId);
  }

  private build(service: ServiceRow, unresolved: Provider, tenantId: string): ClientContext {
    const variables = JSON.parse(service.variables) as Record<string, string>;
    if (tenantInUrls(unresolved, tenantId)) variables.tenant = tenantId;
    const provider = resolveProviderUrls(unresolved, variables);
    const secret = service.client_secret === null ? undefined : this.credentials.openClientSecret(service.id, service.client_secret);
    return clientContext(provider, service.client_id, secret, this.options.providerTimeoutMs);
  }

  /**
   * The refresher's client context for a service: cached, so that a refresh neither reads the
   * service and provider nor parses a custom provider's definition again. `versions` (read by the
   * lease claim) must match the cached ones, else both rows are read again; without them any cached
   * context serves (a check before the claim, which then brings the versions).
   */
  async clientContext(serviceId: string, tenantId: string, versions?: ContextVersions): Promise<ClientContext> {
    let cached = this.contexts.get(serviceId);
    if (
      !cached ||
      (versions && (versions.serviceVersion !== cached.serviceVersion || versions.providerVersion !== cached.providerVersion))
    ) {
      const service = await this.row(serviceId);
      const { provider, version } = await this.versionedProvider(service.provider_id);
      cached = {
        service,
        provider,
        serviceVersion: service.updated_at,
        providerVersion: version,
        context: this.build(service, provider, ''),
      };
      this.contexts.set(serviceId, cached);
    }
    // A client-credentials identity's tenant is part of its provider's URLs: built for it (no I/O).
    if (tenantInUrls(cached.provider, tenantId)) return this.build(cached.service, cached.provider, tenantId);
    return cached.context;
  }

  /** An OAuth 1.0a service's consumer: its client id, and its secret or RSA private key. */
  consumer(service: ServiceRow, provider: Provider): Consumer {
    const secret = service.client_secret === null ? '' : this.credentials.openClientSecret(service.id, service.client_secret);
    return { consumerKey: service.client_id, consumerSecret: secret, signatureMethod: provider.oauth1!.signatureMethod };
  }

  /**
   * A service whose client is registered on the fly: the issuer (or the one a protected resource's
   * RFC 9728 metadata names) is discovered, a client registered (RFC 7591), then provider and
   * service stored, the secret sealed. Nothing is stored when registration fails.
   */
  async registerService(input: RegisterService): Promise<Service> {
    const id = validate.serviceId(input.serviceId, 'serviceId');
    if (this.catalog.has(id)) throw new Conflict(`"${id}" is a built-in provider; give the registered service another id.`);
    const issuer = await issuerFor(input.url, this.options.providerTimeoutMs);
    const provider = await discover(id, issuer, { name: input.name, timeoutMs: this.options.providerTimeoutMs });
    const client = await registerClient(provider, this.redirectUrl(id), this.options.providerTimeoutMs);
    await this.putProvider(provider);
    return this.putService({
      id,
      providerId: provider.id,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      scopes: input.scopes,
    });
  }

  /**
   * Where the proxy may send the service's credentials: its own API base URLs, else its provider's;
   * canonical, never empty (a service with none is refused). The provider's may hold placeholders
   * filled from the service's variables and, for a form kind, the identity's non-secret values (a
   * Zendesk subdomain): the function returned takes those, and reads them only when the service
   * refers to one. Worked out once per configuration: the result is kept with what it was made
   * from (the service's own list, or its provider and variables), so an edit takes effect at once.
   * `provider` is the service's (`getProvider(service.provider_id)`), which the caller reads anyway.
   */
  apiBases(service: ServiceRow, provider: Provider): ApiBases {
    const cached = this.bases.get(service.id);
    const own = service.api_base_urls;
    if (own) {
      if (cached?.source === own) return cached.bases;
      const urls = JSON.parse(own) as string[];
      return this.keepBases(service.id, own, service.variables, () => urls);
    }
    if (cached?.source === provider && cached.variables === service.variables) return cached.bases;
    if (provider.api.baseUrls.length === 0) {
      throw new ProxyRefused(
        'config',
        `Service "${service.id}" has no API base URLs: its provider "${provider.id}" declares none, so set the service's apiBaseUrls.`,
      );
    }
    const variables = JSON.parse(service.variables) as Record<string, string>;
    const fill = (values: Record<string, string>) => resolveApiUrls(provider, values).api.baseUrls.map((u) => apiBase(u, service.id));
    const names = provider.api.baseUrls.flatMap(placeholders);
    if (names.every((name) => name in variables)) {
      const urls = fill(variables);
      return this.keepBases(service.id, provider, service.variables, () => urls);
    }
    return this.keepBases(service.id, provider, service.variables, (identityValues) => fill({ ...identityValues(), ...variables }));
  }

  private keepBases(serviceId: string, source: string | Provider, variables: string, bases: ApiBases): ApiBases {
    this.bases.set(serviceId, { source, variables, bases });
    return bases;
  }

  /**
   * Whether the service's operator chose the hosts its credentials go to: its own apiBaseUrls, or
   * provider base URLs whose host placeholders its variables fill (a self-hosted GitLab's
   * `{baseUrl}`), not a catalog constant or an identity's typed value. Only such hosts may resolve
   * to the operator's private network (proxy/address.ts).
   */
  apiHostsChosenByService(service: ServiceRow, provider: Provider): boolean {
    if (service.api_base_urls) return true;
    return variablesChooseHosts(provider.api.baseUrls, JSON.parse(service.variables) as Record<string, string>);
  }

  /** The connection pools to providers' APIs (the proxy's), for a request that carries a credential outside the proxy. */
  get apiAgents(): ApiAgents {
    return this.options.apiAgents;
  }

  /** The scopes the service asks for: its own, else the provider's defaults. */
  scopes(service: ServiceRow, provider: Provider): string[] {
    const scopes = JSON.parse(service.scopes) as string[];
    return scopes.length > 0 ? scopes : provider.scopes.default;
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
      ...(row.api_base_urls ? { apiBaseUrls: JSON.parse(row.api_base_urls) } : {}),
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }
}

/** Whether a client-credentials identity's tenant fills the provider's `{tenant}` (Microsoft's per-tenant token URL). */
const tenantInUrls = (provider: Provider, tenantId: string) =>
  tenantId !== '' && provider.kind === 'oauth2_client_credentials' && 'tenant' in provider.variables;
