/**
 * Identity rows as the API shows them: a summary (no secrets) for listings, and the fresh identity
 * (with its access token) that getIdentity returns.
 */
import type { FreshIdentity, IdentitySummary } from './broker.js';
import { ReauthorizationRequired } from './errors.js';
import { isoTime } from './iso-time.js';
import { CredentialHolder, credentialOf, type Credential } from './kinds/credential.js';
import type { TokenSet } from './oauth/token-set.js';
import type { IdentityRow, ListedIdentityRow, TokenRow } from './store/store.js';

export const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? undefined : isoTime(ms));

/** JSON.parse for the stored objects, skipping the parser for the common empty one. */
const parseObject = (json: string) => (json === '{}' ? {} : JSON.parse(json));

/** The tenant as the API shows it: stored as '' when there is none. */
export const tenantOf = (row: Pick<IdentityRow, 'tenant_id'>) => (row.tenant_id === '' ? undefined : row.tenant_id);

/** The error for an identity whose grant is gone: the user must authorize again. */
export function reauthError(row: Pick<TokenRow, 'id' | 'service_id' | 'user_id' | 'tenant_id' | 'status'>): ReauthorizationRequired {
  return new ReauthorizationRequired(row.service_id, row.id, row.user_id, tenantOf(row), undefined, {
    identityStatus: row.status === 'dead' ? 'dead' : 'needs_reauth',
  });
}

export function toSummary(row: ListedIdentityRow): IdentitySummary {
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
    metadata: parseObject(row.metadata),
    failingSince: iso(row.failing_since),
    lastCheckedAt: iso(row.last_checked_at),
    healthy: row.healthy === null ? undefined : row.healthy === 1,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

/** The row with its opened tokens, as getIdentity returns it: one shape for every kind. */
export function toFresh(row: TokenRow, tokens: TokenSet): FreshIdentity {
  return new Fresh(row, tokens);
}

/** A class rather than a literal: `headers`/`authorize` come from the prototype, at no cost per read. */
class Fresh extends CredentialHolder implements FreshIdentity {
  declare accessToken?: string;
  readonly credential: Credential;
  readonly expiresAt?: string;
  readonly identityId: string;
  readonly serviceId: string;
  readonly userId: string;
  readonly tenantId?: string;
  readonly tags: Record<string, string>;
  readonly profile: FreshIdentity['profile'];
  readonly native: Record<string, unknown>;

  constructor(row: TokenRow, tokens: TokenSet) {
    super();
    // The token kinds keep accessToken; an API key, Basic or OAuth 1 credential has none.
    if (!tokens.credential) this.accessToken = tokens.accessToken;
    this.credential = credentialOf(tokens);
    this.expiresAt = iso(row.expires_at);
    this.identityId = row.id;
    this.serviceId = row.service_id;
    this.userId = row.user_id;
    this.tenantId = tenantOf(row);
    this.tags = parseObject(row.tags);
    this.profile = parseObject(row.profile);
    this.native = tokens.native;
  }
}
