import type { Kysely, Selectable } from 'kysely';
import type { IdentityFilter, Tags } from '../broker.js';
import type { AuthSessionTable, Database, EventTable, IdentityTable, ProviderTable, ServiceTable } from './schema.js';

export type ServiceRow = Selectable<ServiceTable>;
export type ProviderRow = Selectable<ProviderTable>;
export type IdentityRow = Selectable<IdentityTable>;
export type AuthSessionRow = Selectable<AuthSessionTable>;
export type EventRow = Selectable<EventTable>;

/**
 * The columns a token read uses: enough to answer, to open the tokens and to tell whether they are
 * due. A refresh re-reads the whole row; a read of a fresh token never needs the other columns.
 */
export const TOKEN_COLUMNS = [
  'id',
  'service_id',
  'tenant_id',
  'user_id',
  'status',
  'tokens',
  'expires_at',
  'updated_at',
  'profile',
  'tags',
] as const;
/** An identity row as the token read selects it (TOKEN_COLUMNS). */
export type TokenRow = Pick<IdentityRow, (typeof TOKEN_COLUMNS)[number]>;

/**
 * The columns a listing reads: those of the summary it answers with (`toSummary`). Not the sealed
 * tokens, which a listing never returns, nor the refresher's bookkeeping (version, lease, failures),
 * which a summary does not show: at 100 rows a page, every column is parsed and held 100 times.
 */
export const LISTED_COLUMNS = [
  'id',
  'service_id',
  'tenant_id',
  'user_id',
  'status',
  'expires_at',
  'scope',
  'profile',
  'tags',
  'last_refresh_at',
  'metadata',
  'failing_since',
  'last_checked_at',
  'healthy',
  'created_at',
  'updated_at',
] as const;
/** An identity as a listing reads it (LISTED_COLUMNS). */
export type ListedIdentityRow = Pick<IdentityRow, (typeof LISTED_COLUMNS)[number]>;

/** The fields a new identity, or a new grant on an existing one, writes. */
export interface IdentityWrite {
  service_id: string;
  tenant_id: string;
  user_id: string;
  tags: Tags;
  expires_at: number | null;
  scope: string | null;
  profile: string;
  /** Seals the token set for the row id it will be stored under. */
  sealTokens: (identityId: string) => string;
}

/** The fields a refresh writes. */
export interface RefreshWrite {
  tokens: string;
  /** A success ends a run of failures. */
  failing_since: null;
  expires_at: number | null;
  scope: string | null;
  last_refresh_at: number;
}

/** A retryable refresh failure as the row records it (refresh-failures.ts). */
export interface RefreshFailureWrite {
  refresh_failed_at: number;
  refresh_failure: string;
  refresh_retry_at: number;
  refresh_failures: number;
}

/** What a failed refresh records as it gives its lease back (Store.failRefresh). */
export interface RefreshFailed {
  /** `needs_reauth` when the grant is gone (invalid_grant). */
  status?: IdentityRow['status'];
  /** A retryable failure, shared until its cool-down ends. */
  failure?: RefreshFailureWrite;
  /** `identity.refresh_failed` or `identity.needs_reauth`. */
  event: EventDraft;
}

/**
 * A refresh lease claimed: the row as the claim left it, and the versions (`updated_at`) of its
 * service and of its custom provider (null for a built-in one, or a service that is gone), read in
 * the same statement so that a client context cached per service can be checked without reading them.
 */
export interface LeaseClaim {
  row: IdentityRow;
  serviceVersion: number | null;
  providerVersion: number | null;
}

/** An event's own fields, made before the write that stores it; the identity's fields come from the row written. */
export type EventDraft = Pick<EventRow, 'id' | 'type' | 'data' | 'at'>;

/** The stored event for a draft about this identity. */
export function eventRow(draft: EventDraft, row: Pick<IdentityRow, 'id' | 'service_id' | 'user_id' | 'tenant_id' | 'tags'>): EventRow {
  return { ...draft, service_id: row.service_id, identity_id: row.id, user_id: row.user_id, tenant_id: row.tenant_id, tags: row.tags };
}

export type SessionTake = { ok: true; session: AuthSessionRow } | { ok: false; reason: 'unknown' | 'used' | 'expired' };

export type IdentityListFilter = IdentityFilter & { serviceId?: string };

/** Whether a lookup is the token read by (service, user[, tenant]) that the backends prepare. */
export const isUserLookup = (filter: IdentityListFilter, limit: number) =>
  filter.serviceId !== undefined && filter.userId !== undefined && filter.status === undefined && filter.tags === undefined && limit <= 2;

/**
 * All of core's persistence: one interface, two backends (sqlite.ts, postgres.ts) sharing their
 * SQL in sql-store.ts. A store holds no secrets in clear: what arrives sealed is stored sealed.
 * Times are epoch milliseconds. Every write that races another (a lease, a refresh, a session
 * take) is one conditional statement, so it is atomic on either database.
 */
export interface Store {
  /**
   * The Kysely connection. Packages that keep tables of their own next to core's (the server's
   * API keys and webhooks) use it with their own schema type and migration set.
   */
  readonly db: Kysely<Database>;
  readonly dialect: 'sqlite' | 'postgres';
  /** Brings core's tables to the latest migration. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // custom providers: the definition is JSON, validated by the catalog schema before it gets here
  putProvider(id: string, definition: string, now: number): Promise<void>;
  getProvider(id: string): Promise<ProviderRow | undefined>;
  listProviders(): Promise<ProviderRow[]>;
  deleteProvider(id: string): Promise<boolean>;

  // services
  putService(row: ServiceRow): Promise<void>;
  getService(id: string): Promise<ServiceRow | undefined>;
  listServices(): Promise<ServiceRow[]>;
  countServicesUsingProvider(providerId: string): Promise<number>;
  /** Deletes the service with its identities and pending sessions. */
  deleteService(id: string): Promise<boolean>;

  // authorization sessions
  insertSession(row: AuthSessionRow): Promise<void>;
  /** Marks the session used, once: a second take of the same state reports `used`. */
  takeSession(stateHash: string, now: number): Promise<SessionTake>;
  /** Deletes sessions that expired before `before`; returns how many. */
  pruneSessions(before: number): Promise<number>;

  // identities
  /** On the token-read path: a prepared statement where the driver has them. */
  getIdentity(id: string): Promise<IdentityRow | undefined>;
  /**
   * Stores a grant: a new identity, or new tokens on the existing (service, tenant, user) one, which
   * keeps its id. Returns the row and whether it was created.
   */
  upsertIdentity(write: IdentityWrite, newId: () => string, now: number): Promise<{ row: IdentityRow; created: boolean }>;
  /** Identities matching the filter, in id order, after the cursor, without their tokens. */
  listIdentities(filter: IdentityListFilter, after: string | undefined, limit: number): Promise<ListedIdentityRow[]>;
  /** Up to `limit` identities matching the filter; used to find one and tell ambiguity. On the token-read path by (service, user). */
  findIdentities(filter: IdentityListFilter, limit: number): Promise<IdentityRow[]>;
  /** The token read by id: the token columns alone, a prepared statement where the driver has them. */
  getTokenRow(id: string): Promise<TokenRow | undefined>;
  /** The token read by (service, user[, tenant]): up to two rows (two tell ambiguity), the token columns alone, prepared. */
  findTokenRows(serviceId: string, userId: string, tenantId: string | undefined): Promise<TokenRow[]>;
  deleteIdentity(id: string): Promise<boolean>;
  setStatus(id: string, status: IdentityRow['status'], now: number): Promise<void>;
  /** Replaces the given fields (tags keep identity_tags in step); returns the row, or undefined when there is none. */
  updateIdentityFields(id: string, fields: { tags?: Tags; metadata?: string }, now: number): Promise<IdentityRow | undefined>;
  /** Starts a run of failed refreshes unless one is under way; returns whether this call started it. */
  markFailing(id: string, now: number): Promise<boolean>;
  /** Active or needs_reauth identities failing since before `before` become `dead`; returns them as they were. */
  markDead(before: number, now: number, limit: number): Promise<IdentityRow[]>;
  /** Records a health check's outcome. */
  recordCheck(id: string, healthy: boolean, now: number): Promise<void>;
  /**
   * Active identities of the given services whose last token write (refresh or grant) was before
   * `before`, with a free lease, oldest first: the keep-alive's work list.
   */
  listIdle(serviceIds: string[], before: number, now: number, limit: number): Promise<IdentityRow[]>;
  /** Active identities never checked or last checked before `before`, least recently checked first: the scheduled health checks' work list. */
  listUnchecked(before: number, limit: number): Promise<IdentityRow[]>;
  /** How many identities there are per service and status (the /metrics gauge). */
  countIdentities(): Promise<{ service_id: string; status: string; n: number }[]>;

  // the refresh lease
  /**
   * Claims the lease only if nobody holds a live one, the row is still at `version`, active, and not
   * cooling down after a recorded failure; returns the row as claimed (one statement: no re-read
   * needed), or undefined. `takeOver` names the owner of a live lease whose holder is known to be
   * gone (leaseHolderGone): that lease may be taken too, but only while that owner still holds it.
   */
  claimLease(id: string, version: number, owner: string, now: number, until: number, takeOver?: string): Promise<LeaseClaim | undefined>;
  /**
   * Whether the process holding this row's lease is known to have ended, so the lease need not run
   * out: on PostgreSQL its database session (the lease's advisory lock is free), on SQLite its
   * process (id and start time, one machine). `claimedAt` is when the lease was last claimed or extended.
   */
  leaseHolderGone(row: IdentityRow, claimedAt: number): Promise<boolean>;
  /**
   * Writes refreshed tokens and gives the lease back, fenced: only while this owner still holds the
   * lease on this version. The event is stored in the same transaction. Returns the row written, or
   * undefined when the lease was lost (nothing written).
   */
  completeRefresh(
    id: string,
    version: number,
    owner: string,
    write: RefreshWrite,
    now: number,
    event: EventDraft,
  ): Promise<IdentityRow | undefined>;
  /** Extends a lease this owner still holds. */
  extendLease(id: string, owner: string, until: number): Promise<boolean>;
  /** Gives the lease back without touching the row otherwise (a refresh that could not start, or whose write failed). */
  releaseLease(id: string, owner: string): Promise<void>;
  /**
   * Gives the lease back after a failed refresh, fenced like completeRefresh (only while this owner
   * holds it), and records in the same write what the failure means for everyone: the new status
   * (`needs_reauth` after invalid_grant), a retryable failure to share until its cool-down ends, and
   * the start of the run of failures (`failing_since`, kept when already set). The event is stored in
   * the same transaction. Returns the row written, or undefined when the lease was lost: nothing is
   * written, and whatever its new holder does stands.
   */
  failRefresh(id: string, owner: string, now: number, failed: RefreshFailed): Promise<IdentityRow | undefined>;
  /** Active identities whose token expires before `before`, whose lease is free and who are not cooling down after a failure: the background refresh's work list. */
  listExpiring(before: number, now: number, limit: number): Promise<IdentityRow[]>;

  // events
  insertEvent(row: EventRow): Promise<void>;
  listEvents(options: { after?: string; identityId?: string; limit: number }): Promise<EventRow[]>;
}
