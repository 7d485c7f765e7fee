import { hash, randomBytes } from 'node:crypto';
import { InvalidInput, NotFound, equalInConstantTime, type Store } from '@everyauth/core';
import { migrateServerTables } from './migrations/index.js';
import { serverDb } from './tables.js';

/**
 * `admin` may do everything; `tokens:read` may read tokens and look identities, services and
 * providers up, and nothing more; `connect` may start and complete authorizations (hosted
 * sessions and RemoteBroker's flow); `proxy` may only call provider APIs through /v1/proxy, never
 * seeing a token. An application that both connects users and reads their tokens holds
 * `tokens:read` and `connect`.
 */
export const SCOPES = ['admin', 'tokens:read', 'connect', 'proxy'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeySummary {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
}

/** A key holding the first scope may call routes that need the second: one that can read tokens may as well have the proxy use them. */
const IMPLIED: Partial<Record<Scope, Scope[]>> = { 'tokens:read': ['proxy'] };

/** Whether a key with these scopes may call a route that needs `needed`. */
export const allows = (scopes: readonly Scope[], needed: Scope) =>
  scopes.some((s) => s === 'admin' || s === needed || IMPLIED[s]?.includes(needed));

export interface VerifiedKey {
  id: string;
  scopes: Scope[];
}

const KEY_FORMAT = /^ea_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

// One-shot hashing, to hex text as the column stores it: no Hash object, and no Buffer (each Buffer
// the binding returns has its own backing store, which cost about 1.5 µs of a ~37 µs token request
// in allocation and collection, measured in-process with bench:server-token's load).
const hashOf = (key: string) => hash('sha256', key, 'hex');

function checkScopes(scopes: unknown): Scope[] {
  if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s))) {
    throw new InvalidInput(`scopes must be a non-empty list of ${SCOPES.join(', ')}.`, 'scopes');
  }
  return [...new Set(scopes as Scope[])];
}

/** Makes a key `ea_<id>_<secret>`; only its SHA-256 is stored, so the key is shown once, here. */
export async function createApiKey(
  store: Store,
  input: { name: string; scopes: Scope[] },
): Promise<{ id: string; key: string; summary: ApiKeySummary }> {
  if (typeof input.name !== 'string' || input.name.length === 0 || input.name.length > 100) {
    throw new InvalidInput('name must be 1–100 characters.', 'name');
  }
  const scopes = checkScopes(input.scopes);
  const id = randomBytes(8).toString('hex');
  const key = `ea_${id}_${randomBytes(32).toString('base64url')}`;
  const now = Date.now();
  await migrateServerTables(store);
  await serverDb(store)
    .insertInto('api_keys')
    .values({ id, name: input.name, hash: hashOf(key), scopes: JSON.stringify(scopes), created_at: now })
    .execute();
  return { id, key, summary: { id, name: input.name, scopes, createdAt: new Date(now).toISOString() } };
}

export async function listApiKeys(store: Store): Promise<ApiKeySummary[]> {
  await migrateServerTables(store);
  const rows = await serverDb(store).selectFrom('api_keys').select(['id', 'name', 'scopes', 'created_at']).orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, name: r.name, scopes: JSON.parse(r.scopes), createdAt: new Date(r.created_at).toISOString() }));
}

export async function deleteApiKey(store: Store, id: string): Promise<boolean> {
  await migrateServerTables(store);
  const r = await serverDb(store).deleteFrom('api_keys').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function getApiKey(store: Store, id: string): Promise<ApiKeySummary> {
  const found = (await listApiKeys(store)).find((k) => k.id === id);
  if (!found) throw new NotFound('api_key', id);
  return found;
}

interface CachedKey {
  /** SHA-256 of the key, hex. */
  hash: string;
  /** What the key is let in as: its id and scopes. */
  verified: VerifiedKey;
  /** The key last checked against `hash`: the next request with it skips hashing. */
  lastKey?: string;
}

/**
 * Checks presented keys. Rows are cached for `cacheMs` (a deleted key stops working on every
 * replica within that time). Every request's key is compared in constant time: with the key its
 * cached row let in last, else by its SHA-256 with the stored hash. Keeping that key for as long as
 * its row's entry (`cacheMs`) widens nothing: the process holding it also holds the master keys and
 * every request's headers.
 */
export class ApiKeyVerifier {
  private readonly cache = new Map<string, { row: CachedKey | null; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly cacheMs = 5_000,
  ) {}

  /** The key's id and scopes, or undefined when it is not valid; synchronous while its row is cached. */
  verify(key: string): VerifiedKey | undefined | Promise<VerifiedKey | undefined> {
    const match = KEY_FORMAT.exec(key);
    if (!match) return undefined;
    const id = match[1]!;
    const cached = this.cache.get(id);
    if (cached && cached.until > performance.now()) return check(key, cached.row);
    return this.load(id).then((row) => check(key, row));
  }

  /** Forgets a key at once on this replica (after a delete through this replica's API). */
  forget(id: string): void {
    this.cache.delete(id);
  }

  private async load(id: string): Promise<CachedKey | null> {
    // The monotonic clock: were the wall clock set back an hour, a key deleted through another
    // replica would go on working here for that hour.
    const now = performance.now();
    const found = await serverDb(this.store).selectFrom('api_keys').select(['hash', 'scopes']).where('id', '=', id).executeTakeFirst();
    const row = found ? { hash: found.hash, verified: Object.freeze({ id, scopes: JSON.parse(found.scopes) as Scope[] }) } : null;
    // Unknown ids are cached too, so guessing ids does not become database load; the map stays bounded.
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(id, { row, until: now + this.cacheMs });
    return row;
  }
}

/**
 * Whether `key` is the one `row` was made for, in constant time: the key this row let in last, else
 * the key's hash against the stored one. Skipping the hash for the key just let in saved 1.7 µs of
 * the ~47 µs token request (in-process, eleven alternating rounds of bench:server-token's load).
 */
function check(key: string, row: CachedKey | null): VerifiedKey | undefined {
  if (!row) return undefined;
  if (row.lastKey !== undefined && equalInConstantTime(key, row.lastKey)) return row.verified;
  if (!equalInConstantTime(hashOf(key), row.hash)) return undefined;
  row.lastKey = key;
  return row.verified;
}
