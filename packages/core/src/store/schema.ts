import type { ColumnType, Generated } from 'kysely';

/** Epoch milliseconds. Stored as BIGINT so SQLite and PostgreSQL agree. */
type Millis = number;

export interface ServiceTable {
  id: string;
  provider_id: string;
  client_id: string;
  /** Sealed by the vault, associated data `service:<id>`. */
  client_secret: string | null;
  scopes: string; // JSON array
  params: string; // JSON object
  variables: string; // JSON object
  /** JSON array: the service's own API base URLs for the proxy; NULL uses the provider's. */
  api_base_urls?: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface ProviderTable {
  id: string;
  definition: string; // JSON, validated against the catalog schema
  created_at: Millis;
  updated_at: Millis;
}

export interface IdentityTable {
  id: string;
  service_id: string;
  /** '' when the identity has no tenant, so the unique key (service, tenant, user) holds on every database. */
  tenant_id: string;
  user_id: string;
  status: 'active' | 'needs_reauth' | 'dead' | 'revoked';
  /** Sealed token set, associated data `identity:<id>`. */
  tokens: string;
  expires_at: Millis | null;
  scope: string | null;
  profile: string; // JSON
  tags: string; // JSON object; identity_tags holds the same pairs for lookups
  /** Bumped on every token write; fences a refresh whose lease was lost. */
  version: ColumnType<number, number | undefined, number>;
  lease_owner: string | null;
  lease_until: Millis | null;
  last_refresh_at: Millis | null;
  /** The app's own small JSON object (PATCH /v1/identities/{id}); never read by the broker. */
  metadata: ColumnType<string, string | undefined, string>;
  /** When refreshes started failing (cleared by the next success); `dead` after the configured days. */
  failing_since: ColumnType<Millis | null, Millis | null | undefined, Millis | null>;
  last_checked_at: ColumnType<Millis | null, Millis | null | undefined, Millis | null>;
  /** 1 healthy, 0 the last check failed, null never checked. */
  healthy: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: Millis;
  updated_at: Millis;
}

export interface IdentityTagTable {
  identity_id: string;
  key: string;
  value: string;
}

export interface AuthSessionTable {
  /** SHA-256 of `state`, so a copy of the database cannot complete a pending flow. */
  state_hash: string;
  service_id: string;
  user_id: string;
  tenant_id: string;
  tags: string; // JSON
  finished_url: string | null;
  redirect_uri: string;
  /** Sealed `{ codeVerifier, nonce }`, associated data `session:<state_hash>`. */
  secrets: string;
  /** SHA-256 of the browser-binding cookie, when the front end set one. */
  browser_binding: string | null;
  expires_at: Millis;
  used_at: Millis | null;
  created_at: Millis;
  /** Set on a reconnect: the grant must land on this identity. */
  identity_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1 when a reconnect may bring back another account at the provider than the stored one. */
  allow_account_change: ColumnType<number, number | undefined, number>;
}

export interface EventTable {
  id: string;
  type: string;
  service_id: string;
  identity_id: string;
  user_id: string;
  tenant_id: string;
  data: string; // JSON, never a token
  tags: ColumnType<string, string | undefined, string>; // JSON object: the identity's tags when it happened
  at: Millis;
}

export interface Database {
  services: ServiceTable;
  providers: ProviderTable;
  identities: IdentityTable;
  identity_tags: IdentityTagTable;
  auth_sessions: AuthSessionTable;
  events: EventTable;
}

export type { Generated };
