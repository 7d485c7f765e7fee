import type {
  AuthorizationCompleted,
  AuthorizationStarted,
  BeginAuthorization,
  Broker,
  BrokerEvent,
  FetchInit,
  FreshIdentity,
  IdentityCheck,
  GetIdentityOptions,
  IdentityFilter,
  IdentityUpdate,
  ReconnectLinkOptions,
  IdentitySelector,
  IdentitySummary,
  Page,
  PageRequest,
  ProviderSummary,
  PutIdentity,
  RegisterService,
  Service,
  ServiceInput,
  HostedSession,
} from './broker.js';
import { withHelpers, type Credential } from './kinds/credential.js';
import type { ProviderFilter } from './catalog/index.js';
import type { Provider, ProviderInput } from './catalog/schema.js';
import { ConfigurationError, InvalidInput, NotFound, ServerUnavailable, errorFromJSON } from './errors.js';
import { isIdentityId } from './ids.js';
import { unbuffered } from './proxy/body.js';
import { requestHeaders } from './proxy/headers.js';
import { resolveTarget } from './proxy/target.js';

export interface RemoteBrokerOptions {
  /** The server's base URL, e.g. `https://everyauth.internal:4000`. */
  server: string;
  /** An API key (`ea_<id>_<secret>`): `tokens:read` to read tokens, plus `connect` to start authorizations; `admin` for management. */
  apiKey: string;
  /**
   * Timeout of each request (default 30 s). The server learns it from every request and answers a
   * token read before it (within its own read deadline, 8 s by default), so a slow provider shows
   * as `provider_unavailable`, not as this side timing out.
   */
  timeoutMs?: number;
}

/** The header in which RemoteBroker tells the server how long it waits for an answer, in ms. */
export const TIMEOUT_HEADER = 'everyauth-timeout-ms';

type Query = Record<string, string | string[] | number | boolean | undefined>;

/**
 * The Broker over the EveryAuth server's REST API (/v1). Errors come back as the same typed errors
 * LocalBroker throws, with the same codes and messages, so callers cannot tell the two apart.
 * Plain fetch; no state besides the base URL and key.
 */
export class RemoteBroker implements Broker {
  /** The server hosts the flow and its callback; the app starts it with createSession. */
  readonly flowHost = 'broker' as const;
  private readonly base: string;
  private readonly auth: string;
  private readonly timeoutMs: number;

  constructor(options: RemoteBrokerOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new ConfigurationError(`The server URL "${options.server}" is not an absolute URL.`);
    }
    if (!options.apiKey) throw new ConfigurationError('RemoteBroker needs an API key (EVERYAUTH_API_KEY).');
    this.base = url.href.replace(/\/+$/, '');
    this.auth = `Bearer ${options.apiKey}`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  // ---- providers ----

  listProviders(filter: ProviderFilter = {}): Promise<ProviderSummary[]> {
    return this.call('GET', '/v1/providers', { query: { search: filter.search, kind: filter.kind, category: filter.category } });
  }

  getProvider(id: string): Promise<Provider> {
    return this.call('GET', `/v1/providers/${seg(id)}`);
  }

  putProvider(input: ProviderInput): Promise<Provider> {
    const id = (input as { id?: unknown }).id;
    if (typeof id !== 'string' || id.length === 0) throw new InvalidInput('The provider definition needs an id.', 'id');
    return this.call('PUT', `/v1/providers/${seg(id)}`, { body: input });
  }

  discoverProvider(id: string, issuer: string, options: { name?: string } = {}): Promise<Provider> {
    return this.call('POST', '/v1/providers/discover', { body: { id, issuer, name: options.name } });
  }

  deleteProvider(id: string): Promise<boolean> {
    return this.deleted(`/v1/providers/${seg(id)}`);
  }

  // ---- services ----

  putService(input: ServiceInput): Promise<Service> {
    const { id, ...rest } = input;
    return this.call('PUT', `/v1/services/${seg(id)}`, { body: rest });
  }

  getService(id: string): Promise<Service> {
    return this.call('GET', `/v1/services/${seg(id)}`);
  }

  listServices(): Promise<Service[]> {
    return this.call('GET', '/v1/services');
  }

  deleteService(id: string): Promise<boolean> {
    return this.deleted(`/v1/services/${seg(id)}`);
  }

  // ---- authorization ----

  beginAuthorization(input: BeginAuthorization): Promise<AuthorizationStarted> {
    return this.call('POST', '/v1/authorizations', { body: input });
  }

  completeAuthorization(
    serviceId: string,
    query: URLSearchParams | Record<string, unknown>,
    options: { browserBinding?: string } = {},
  ): Promise<AuthorizationCompleted> {
    const params = query instanceof URLSearchParams ? query : toSearchParams(query);
    return this.call('POST', '/v1/authorizations/complete', {
      body: { serviceId, query: params.toString(), browserBinding: options.browserBinding },
    });
  }

  /**
   * Server only: a hosted authorization. The link leads to the server, which binds the flow to the
   * user's browser, sends it to the provider and, after the callback, to `finishedUrl`.
   */
  createSession(input: Omit<BeginAuthorization, 'browserBinding'>): Promise<HostedSession> {
    return this.call('POST', '/v1/sessions', { body: input });
  }

  // ---- identities ----

  async findIdentity(serviceId: string, selector: IdentitySelector): Promise<IdentitySummary | undefined> {
    try {
      if (typeof selector === 'string' && isIdentityId(selector)) {
        const found = await this.call<IdentitySummary>('GET', `/v1/identities/${seg(selector)}`);
        return found.serviceId === serviceId ? found : undefined;
      }
      return await this.call<IdentitySummary>('GET', `/v1/services/${seg(serviceId)}/identity`, { query: filterQuery(selector) });
    } catch (err) {
      if (err instanceof NotFound && err.kind === 'identity') return undefined;
      throw err;
    }
  }

  listIdentities(serviceId: string | undefined, filter: IdentityFilter = {}, page: PageRequest = {}): Promise<Page<IdentitySummary>> {
    return this.call('GET', '/v1/identities', { query: { serviceId, ...filterQuery(filter), next: page.next, count: page.count } });
  }

  deleteIdentity(identityId: string, options: { revoke?: boolean } = {}): Promise<boolean> {
    return this.deleted(`/v1/identities/${seg(identityId)}`, { revoke: options.revoke });
  }

  async deleteIdentities(serviceId: string, filter: IdentityFilter | null, options: { revoke?: boolean } = {}): Promise<number> {
    // The server refuses an empty filter, as LocalBroker does; null says "all" explicitly.
    const query = filter === null ? { all: true } : filterQuery(filter);
    const r = await this.call<{ deleted: number }>('DELETE', `/v1/services/${seg(serviceId)}/identities`, {
      query: { ...query, revoke: options.revoke },
    });
    return r.deleted;
  }

  registerService(input: RegisterService): Promise<Service> {
    return this.call('POST', '/v1/services/register', { body: input });
  }

  putIdentity(input: PutIdentity): Promise<IdentitySummary> {
    return this.call('POST', '/v1/identities', { body: input });
  }

  /** `deadlineMs` shortens this read's timeout (never lengthens it); the server answers before it. */
  async getIdentity(serviceId: string, selector: IdentitySelector, options: GetIdentityOptions = {}): Promise<FreshIdentity | undefined> {
    const force = options.force ? true : undefined;
    const timeoutMs = Math.min(this.timeoutMs, options.deadlineMs ?? Infinity);
    type Wire = Omit<FreshIdentity, 'credential' | 'headers' | 'authorize'> & { credential?: Credential };
    // The helpers are functions: rebuilt here from the credential the server sent (a server from
    // before credential kinds sends only accessToken).
    const helped = (w: Wire) => withHelpers({ ...w, credential: w.credential ?? { type: 'oauth2' as const, accessToken: w.accessToken! } });
    try {
      if (typeof selector === 'string' && isIdentityId(selector)) {
        return helped(
          await this.call<Wire>('GET', `/v1/services/${seg(serviceId)}/identities/${seg(selector)}/token`, {
            query: { force },
            timeoutMs,
          }),
        );
      }
      return helped(
        await this.call<Wire>('GET', `/v1/services/${seg(serviceId)}/token`, { query: { ...filterQuery(selector), force }, timeoutMs }),
      );
    } catch (err) {
      if (err instanceof NotFound && err.kind === 'identity') return undefined;
      throw err;
    }
  }

  async updateIdentity(identityId: string, update: IdentityUpdate): Promise<IdentitySummary | undefined> {
    try {
      return await this.call<IdentitySummary>('PATCH', `/v1/identities/${seg(identityId)}`, { body: update });
    } catch (err) {
      if (err instanceof NotFound && err.kind === 'identity') return undefined;
      throw err;
    }
  }

  createReconnectLink(identityId: string, options: ReconnectLinkOptions = {}): Promise<HostedSession> {
    return this.call('POST', `/v1/identities/${seg(identityId)}/reconnect`, { body: options });
  }

  checkIdentity(identityId: string): Promise<IdentityCheck> {
    return this.call('POST', `/v1/identities/${seg(identityId)}/check`);
  }

  listEvents(options: { after?: string; count?: number; identityId?: string } = {}): Promise<BrokerEvent[]> {
    return this.call('GET', '/v1/events', { query: options });
  }

  /**
   * Through the server's `/v1/proxy/{serviceId}/…`: the identity goes in EveryAuth-* header fields,
   * an absolute URL in `EveryAuth-Url`. The server's own errors come back as the typed errors;
   * anything the API answered (marked `EveryAuth-Proxy: upstream`) comes back as the Response.
   */
  async fetch(serviceId: string, who: IdentitySelector, pathOrUrl: string, init: FetchInit = {}): Promise<Response> {
    const headers: Record<string, string> = { ...requestHeaders(init.headers), authorization: this.auth, ...identityHeaders(who) };
    let path = '';
    if (/^(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(pathOrUrl)) headers['everyauth-url'] = pathOrUrl;
    else {
      // Checked here as the server will, so that the URL parser does not fold a ".." away first.
      const checked = resolveTarget(['https://proxy.invalid'], pathOrUrl);
      path = checked.pathname === '/' && !pathOrUrl.startsWith('/') ? checked.search : checked.pathname + checked.search;
    }
    let response: Response;
    try {
      response = await fetch(`${this.base}/v1/proxy/${seg(serviceId)}${path}`, {
        method: init.method ?? 'GET',
        headers,
        body: unbuffered(init.body) as BodyInit | null | undefined,
        signal: init.signal,
        redirect: 'manual',
        duplex: 'half',
      } as RequestInit);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ServerUnavailable(this.base, 'unreachable', { cause: err });
    }
    if (response.headers.get('everyauth-proxy') === 'upstream') return response;
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    throw errorFromJSON(response.status, body, this.base);
  }

  async close(): Promise<void> {}

  // ---- HTTP ----

  private async deleted(path: string, query: Query = {}): Promise<boolean> {
    try {
      await this.call('DELETE', path, { query });
      return true;
    } catch (err) {
      if (err instanceof NotFound) return false;
      throw err;
    }
  }

  private async call<T>(method: string, path: string, options: { query?: Query; body?: unknown; timeoutMs?: number } = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(item));
    }
    // The server answers token reads within this, minus the trip, so this side never gives up first.
    const headers: Record<string, string> = {
      authorization: this.auth,
      accept: 'application/json',
      [TIMEOUT_HEADER]: String(timeoutMs),
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError';
      throw new ServerUnavailable(this.base, timedOut ? 'timeout' : 'unreachable', { cause: err });
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (response.ok) return body as T;
    throw errorFromJSON(response.status, body, this.base);
  }
}

const seg = (value: string) => encodeURIComponent(value);

function filterQuery(selector: IdentitySelector): Query {
  const filter: IdentityFilter = typeof selector === 'string' ? { userId: selector } : selector;
  return {
    userId: filter.userId,
    tenantId: filter.tenantId,
    status: filter.status,
    tag: Object.entries(filter.tags ?? {}).map(([k, v]) => `${k}=${v}`),
  };
}

/**
 * How the proxy route names the identity: an id, or user and tenant ids (percent-encoded, as header
 * values are bytes) and tags (form-encoded `k=v&k2=v2`).
 */
export function identityHeaders(who: IdentitySelector): Record<string, string> {
  if (typeof who === 'string') {
    return isIdentityId(who) ? { 'everyauth-identity-id': who } : { 'everyauth-user-id': encodeURIComponent(who) };
  }
  const out: Record<string, string> = {};
  if (who.userId !== undefined) out['everyauth-user-id'] = encodeURIComponent(who.userId);
  if (who.tenantId !== undefined) out['everyauth-tenant-id'] = encodeURIComponent(who.tenantId);
  if (who.tags && Object.keys(who.tags).length > 0) out['everyauth-tags'] = new URLSearchParams(who.tags).toString();
  return out;
}

function toSearchParams(query: Record<string, unknown>): URLSearchParams {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (typeof v === 'string') params.append(k, v);
    else if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
  }
  return params;
}
