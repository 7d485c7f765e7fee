import type { Provider, ProviderInput } from './catalog/schema.js';
import type { Credential, CredentialHelpers } from './kinds/credential.js';

export type { Credential, CredentialHelpers } from './kinds/credential.js';

export type Tags = Record<string, string>;
/**
 * `needs_reauth`: the grant is gone (invalid_grant); `dead`: refreshes failed for the configured
 * days (default 7). Either comes back to `active` through a reconnect; neither is ever deleted
 * unless the app asks.
 */
export type IdentityStatus = 'active' | 'needs_reauth' | 'dead' | 'revoked';

/** The app's own small JSON object on an identity (at most {@link METADATA_MAX_BYTES} serialized). */
export type Metadata = Record<string, unknown>;

/** The largest serialized metadata an identity may carry. */
export const METADATA_MAX_BYTES = 4096;

/** A configured use of a provider. The client secret never leaves the broker; `hasClientSecret` says whether one is set. */
export interface Service {
  id: string;
  providerId: string;
  clientId: string;
  hasClientSecret: boolean;
  /** Scopes requested; the provider's defaults when empty. */
  scopes: string[];
  /** Extra authorization parameters, merged over the provider's. */
  params: Record<string, string>;
  /** Values for the provider's template variables (`subdomain`, `tenant`, …). */
  variables: Record<string, string>;
  /** The redirect URL to register at the provider. */
  redirectUrl: string;
  /** The service's own API base URLs for the proxy, used instead of the provider's `api.baseUrls`; absent when it has none. */
  apiBaseUrls?: string[];
  createdAt: string;
  updatedAt: string;
}

export interface ServiceInput {
  id: string;
  providerId?: string;
  clientId?: string;
  /** `null` removes the secret; `undefined` keeps it. */
  clientSecret?: string | null;
  scopes?: string[];
  params?: Record<string, string>;
  variables?: Record<string, string>;
  /** The only URLs `fetch` sends this service's credentials under (https, host names); `null` removes them, `undefined` keeps them. */
  apiBaseUrls?: string[] | null;
}

/** A service whose client is registered on the fly (RFC 7591) at a discovered authorization server. */
export interface RegisterService {
  /** Id of the new service, and of the custom provider discovered for it. */
  serviceId: string;
  /** An issuer, or a protected resource (a remote MCP server) whose RFC 9728 metadata names its issuer. */
  url: string;
  name?: string;
  scopes?: string[];
}

export interface Profile {
  id?: string;
  name?: string;
  email?: string;
  [claim: string]: unknown;
}

/** An identity without its tokens: what listings show. */
export interface IdentitySummary {
  id: string;
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags: Tags;
  status: IdentityStatus;
  profile: Profile;
  scope?: string;
  /** ISO time the access token expires, if it does. */
  expiresAt?: string;
  /** When the tokens were last renewed: a refresh, or a new grant on the same identity (a reconnect). */
  lastRefreshAt?: string;
  metadata: Metadata;
  /** When refreshes started failing; absent while they succeed. */
  failingSince?: string;
  /** The last health check's time and outcome; absent until checked. */
  lastCheckedAt?: string;
  healthy?: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What `updateIdentity` changes; an absent field is left as it is. */
export interface IdentityUpdate {
  /** Replaces every tag. */
  tags?: Tags;
  /** Replaces the metadata; `{}` clears it. */
  metadata?: Metadata;
}

/** A health check's outcome: the provider's test request with the identity's token. */
export interface IdentityCheck {
  identityId: string;
  healthy: boolean;
  checkedAt: string;
  /** The test request's HTTP status, when one was sent. */
  status?: number;
  /** Why it is unhealthy (error code or HTTP status), when it is. */
  reason?: string;
}

/**
 * What `getIdentity` hands back, one shape for every kind: the credential fresh for at least the
 * refresh margin, and `headers`/`authorize` to apply it to a request without branching on its kind.
 */
export interface FreshIdentity extends CredentialHelpers {
  /** The bearer token, for the kinds that have one (OAuth 2, client credentials, service accounts). */
  accessToken?: string;
  credential: Credential;
  expiresAt?: string;
  identityId: string;
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags: Tags;
  profile: Profile;
  /** The provider's token response without the refresh token: extra fields (Slack's team, Salesforce's instance_url) stay here. */
  native: Record<string, unknown>;
}

/** Selects identities of one service. Every given field must match; tags match as a subset. */
export interface IdentityFilter {
  userId?: string;
  tenantId?: string;
  tags?: Tags;
  status?: IdentityStatus;
}

/** Either an identity id (`idn_…`), a user id, or a filter. */
export type IdentitySelector = string | IdentityFilter;

export interface Page<T> {
  items: T[];
  /** Pass back as `next` to read the following page; absent on the last one. */
  next?: string;
}

export interface PageRequest {
  next?: string;
  /** Items per page, 1–1000, default 100. */
  count?: number;
}

export interface BeginAuthorization {
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags?: Tags;
  /** Where the user lands after the callback; a relative path or an allow-listed origin. */
  finishedUrl?: string;
  /**
   * A secret the front end also sets as a cookie in the user's browser; the callback must present
   * it again, which binds the flow to the browser that started it (RFC 9700 §4.7).
   */
  browserBinding?: string;
  /**
   * A reconnect: re-authorizes this identity (same id, tags and metadata; new tokens; back to
   * `active`). Its service, user and tenant are the identity's; the input's must match or be absent.
   */
  reconnect?: { identityId: string; allowAccountChange?: boolean };
}

/**
 * A credential stored without a redirect flow: values the user typed into the form (`api_key`,
 * `basic`, a service account for `jwt`), or tokens the app already holds (moving in from another
 * broker). Checked with the provider before anything is stored.
 */
export interface PutIdentity {
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags?: Tags;
  /** The form's values, by the provider's field names. */
  fields?: Record<string, string>;
  /** OAuth 2 tokens the app already has; with a refresh token, an expired access token is refreshed first. */
  tokens?: { accessToken?: string; refreshToken?: string; expiresAt?: string; scope?: string };
}

export interface AuthorizationStarted {
  /** The provider's authorization URL to send the user to. */
  url: string;
  state: string;
  expiresAt: string;
}

export interface AuthorizationCompleted {
  identity: IdentitySummary;
  /** `finishedUrl` with userId, tenantId and serviceId appended; undefined when the flow had none. */
  finishedUrl?: string;
}

export type EventType =
  | 'identity.created'
  /** Tags or metadata changed, or the same user authorized again outside a reconnect. */
  | 'identity.updated'
  | 'identity.reconnected'
  | 'identity.refreshed'
  | 'identity.refresh_failed'
  | 'identity.needs_reauth'
  /** A refresh or health check succeeded after failures. */
  | 'identity.recovered'
  | 'identity.dead'
  | 'identity.deleted'
  | 'identity.check_failed';

/** Every event type, in the order above. */
export const EVENT_TYPES: readonly EventType[] = [
  'identity.created',
  'identity.updated',
  'identity.reconnected',
  'identity.refreshed',
  'identity.refresh_failed',
  'identity.needs_reauth',
  'identity.recovered',
  'identity.dead',
  'identity.deleted',
  'identity.check_failed',
];

export interface BrokerEvent {
  id: string;
  type: EventType;
  serviceId: string;
  identityId: string;
  userId: string;
  tenantId?: string;
  /** The identity's tags when the event happened. */
  tags: Tags;
  at: string;
  data: Record<string, unknown>;
}

/** fetch's RequestInit, except that the body may also be a Node stream or any async iterable of bytes (streamed, never buffered). */
export type FetchInit = Omit<RequestInit, 'body'> & { body?: BodyInit | AsyncIterable<Uint8Array> | null };

/** A link that starts an authorization on a broker that hosts the flow (the server's `/v1/sessions`). */
export interface HostedSession {
  /** Send the user's browser here. */
  url: string;
  expiresAt: string;
}

export interface ReconnectLinkOptions {
  /** Where the user lands after the callback; a relative path or an allow-listed origin. */
  finishedUrl?: string;
  /** Accept a grant for another account at the provider than the one the identity holds. */
  allowAccountChange?: boolean;
  /** How long the link works (server default: 7 days). */
  lifetimeMinutes?: number;
}

export interface ProviderSummary {
  id: string;
  name: string;
  custom: boolean;
  docs: string;
}

/**
 * The one interface every front end speaks: LocalBroker (over a store) and RemoteBroker (over HTTP).
 * Every method is async so either can stand behind it.
 */
export interface Broker {
  listProviders(options?: { search?: string }): Promise<ProviderSummary[]>;
  getProvider(id: string): Promise<Provider>;
  /** Adds or replaces a custom provider, validated against the catalog schema. */
  putProvider(input: ProviderInput): Promise<Provider>;
  /** Adds a custom provider from an issuer URL by OpenID Connect / RFC 8414 discovery. */
  discoverProvider(id: string, issuer: string, options?: { name?: string }): Promise<Provider>;
  deleteProvider(id: string): Promise<boolean>;

  putService(input: ServiceInput): Promise<Service>;
  /** Discovers the authorization server, registers a client there (RFC 7591) and stores the service with its sealed secret. */
  registerService(input: RegisterService): Promise<Service>;
  getService(id: string): Promise<Service>;
  listServices(): Promise<Service[]>;
  deleteService(id: string): Promise<boolean>;

  /**
   * Who serves the provider's callback. `app`: the application does (embedded, LocalBroker); it
   * starts flows with beginAuthorization and a browser binding and passes the callback to
   * completeAuthorization. `broker`: the broker hosts the flow (a server, through RemoteBroker);
   * the application starts it with createSession.
   */
  readonly flowHost: 'app' | 'broker';
  beginAuthorization(input: BeginAuthorization): Promise<AuthorizationStarted>;
  /**
   * A link that starts the authorization on a broker that hosts the flow, binding the browser on
   * the broker's side. A broker whose flows the app serves (`flowHost: 'app'`) refuses with ConfigurationError.
   */
  createSession(input: Omit<BeginAuthorization, 'browserBinding'>): Promise<HostedSession>;
  /** Takes the callback's query string. Throws AuthorizationFailed (with `finishedUrl` when known); stores nothing then. */
  completeAuthorization(
    serviceId: string,
    query: URLSearchParams | Record<string, unknown>,
    options?: { browserBinding?: string },
  ): Promise<AuthorizationCompleted>;

  /** Stores a typed-in or imported credential after the provider accepted it; replaces the user's earlier one. */
  putIdentity(input: PutIdentity): Promise<IdentitySummary>;

  /** One identity without tokens; undefined when none matches, AmbiguousIdentity when several do. */
  findIdentity(serviceId: string, selector: IdentitySelector): Promise<IdentitySummary | undefined>;
  listIdentities(serviceId: string | undefined, filter?: IdentityFilter, page?: PageRequest): Promise<Page<IdentitySummary>>;
  deleteIdentity(identityId: string, options?: { revoke?: boolean }): Promise<boolean>;
  /** Deletes every identity of the service matching the filter; `null` means all of them (an empty filter is refused). */
  deleteIdentities(serviceId: string, filter: IdentityFilter | null, options?: { revoke?: boolean }): Promise<number>;

  /** Replaces an identity's tags and/or metadata; emits `identity.updated`. Undefined when there is no such identity. */
  updateIdentity(identityId: string, update: IdentityUpdate): Promise<IdentitySummary | undefined>;
  /** Runs the provider's test request with the identity's token and records `lastCheckedAt` and `healthy`. */
  checkIdentity(identityId: string): Promise<IdentityCheck>;

  /**
   * A link that re-authorizes this same identity (same id, tags and metadata; new tokens; back to
   * `active`), for an identity in needs_reauth or dead. A grant for another account at the provider
   * than the stored one is refused unless `allowAccountChange`. Needs a broker that hosts the flow
   * (a server) or a LocalBroker given `reconnectUrl`; otherwise ConfigurationError.
   */
  createReconnectLink(identityId: string, options?: ReconnectLinkOptions): Promise<HostedSession>;

  /** A fresh access token: refreshed first when it expires within the margin, or when `force` is set. */
  getIdentity(serviceId: string, selector: IdentitySelector, options?: { force?: boolean }): Promise<FreshIdentity | undefined>;

  listEvents(options?: { after?: string; count?: number; identityId?: string }): Promise<BrokerEvent[]>;

  /**
   * Calls the service's API as the identity, without the caller ever holding its credential: the
   * request goes to `pathOrUrl` resolved under the service's API base URLs (anything else is
   * refused with ProxyRefused), carrying the credential; a 401 renews it once and resends; a
   * redirect comes back unfollowed; credential-bearing response fields are removed. Bodies stream.
   */
  fetch(serviceId: string, who: IdentitySelector, pathOrUrl: string, init?: FetchInit): Promise<Response>;

  close(): Promise<void>;
}
