/**
 * Re-encryption of every sealed value in a store under the vault's current key (`everyauth keys
 * rotate`), and counts of values per key id (`everyauth keys status`, `keys retire`).
 *
 * Safe to interrupt and to run next to live traffic: each value is replaced by a conditional UPDATE
 * (only while the row still holds the exact old ciphertext), batches commit one by one, and every
 * value is at all times sealed under a key the ring still holds. Running it again continues with the
 * values that are not yet under the current key.
 */
import type { Kysely } from 'kysely';
import { sealedLabel } from './credentials.js';
import { DecryptionFailed } from './errors.js';
import type { Store } from './store/store.js';
import type { Vault } from './vault.js';

/** A column holding sealed values, the row key, and the associated data each value is bound to. */
export interface SealedColumn {
  table: string;
  key: string;
  column: string;
  aad: (key: string) => string;
}

/**
 * Every sealed column of core's schema. Packages with tables of their own (the server's webhook
 * secrets) pass theirs along in `columns`; a table that does not exist in a store is skipped.
 */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'services', key: 'id', column: 'client_secret', aad: sealedLabel.service },
  { table: 'identities', key: 'id', column: 'tokens', aad: sealedLabel.identity },
  { table: 'auth_sessions', key: 'state_hash', column: 'secrets', aad: sealedLabel.session },
];

export interface KeyUsage {
  /** Values sealed under each key id asked about. */
  byKey: Record<string, number>;
  /** Values under a key id that was not asked about (a key missing from the ring). */
  other: number;
  total: number;
}

export interface ResealProgress {
  /** Values handled so far (re-sealed, or found changed by someone else meanwhile). */
  done: number;
  /** Values that were not under the current key when the run started. */
  total: number;
}

export interface ResealOptions {
  /** The columns to re-seal; default SEALED_COLUMNS (core's). */
  columns?: readonly SealedColumn[];
  /** Rows read and rewritten per transaction; default 500. */
  batchSize?: number;
  /** Pause between batches, to spare a busy database; default 0. */
  pauseMs?: number;
  onProgress?: (progress: ResealProgress) => void;
}

export interface ResealResult {
  /** Values now sealed under the current key by this run. */
  resealed: number;
  /** Values another writer replaced meanwhile (a refresh, a new secret); they were left as that writer wrote them. */
  changed: number;
  /** Values not under the current key when the run started. */
  total: number;
}

const prefixOf = (keyId: string) => `ea1.${keyId}.`;

/** The store's tables, so the columns of a migration this build does not know about are skipped, not failed on. */
async function presentColumns(store: Store, columns: readonly SealedColumn[]): Promise<SealedColumn[]> {
  const tables = new Set((await store.db.introspection.getTables()).map((t) => t.name));
  return columns.filter((c) => tables.has(c.table));
}

const anyDb = (store: Store) => store.db as unknown as Kysely<any>;

/** How many values of `column` are sealed under `keyId` (or, with `not`, under any other key). */
async function countUnder(db: Kysely<any>, c: SealedColumn, keyId: string | undefined, not = false): Promise<number> {
  let q = db
    .selectFrom(c.table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where(c.column, 'is not', null);
  if (keyId !== undefined) {
    const prefix = prefixOf(keyId);
    // substr, not LIKE: key ids may contain "_", which LIKE reads as a wildcard.
    q = q.where((eb) => eb(eb.fn('substr', [eb.ref(c.column), eb.lit(1), eb.lit(prefix.length)]), not ? '!=' : '=', prefix));
  }
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Counts the sealed values of `columns` under each of `keyIds`, and under any other key. */
export async function countSealedByKey(
  store: Store,
  keyIds: readonly string[],
  columns: readonly SealedColumn[] = SEALED_COLUMNS,
): Promise<KeyUsage> {
  const db = anyDb(store);
  const usage: KeyUsage = { byKey: Object.fromEntries(keyIds.map((k) => [k, 0])), other: 0, total: 0 };
  for (const c of await presentColumns(store, columns)) {
    const total = await countUnder(db, c, undefined);
    let known = 0;
    for (const keyId of keyIds) {
      const n = await countUnder(db, c, keyId);
      usage.byKey[keyId]! += n;
      known += n;
    }
    usage.total += total;
    usage.other += total - known;
  }
  return usage;
}

/** How many sealed values are not under the vault's current key: the work left for `resealStore`. */
export async function countNotUnderCurrentKey(
  store: Store,
  vault: Vault,
  columns: readonly SealedColumn[] = SEALED_COLUMNS,
): Promise<number> {
  const db = anyDb(store);
  let n = 0;
  for (const c of await presentColumns(store, columns)) n += await countUnder(db, c, vault.currentKeyId, true);
  return n;
}

/**
 * Re-seals, under the vault's current key, every value sealed under another key. The vault must hold
 * the old keys too. Throws DecryptionFailed (naming the row) for a value no loaded key opens;
 * batches committed before that stay committed, so fixing the key ring and running again continues.
 */
export async function resealStore(store: Store, vault: Vault, options: ResealOptions = {}): Promise<ResealResult> {
  const batchSize = options.batchSize ?? 500;
  const db = anyDb(store);
  const columns = await presentColumns(store, options.columns ?? SEALED_COLUMNS);
  const prefix = prefixOf(vault.currentKeyId);
  const total = await countNotUnderCurrentKey(store, vault, columns);
  const result: ResealResult = { resealed: 0, changed: 0, total };
  options.onProgress?.({ done: 0, total });
  for (const c of columns) {
    let after: string | undefined;
    for (;;) {
      let q = db
        .selectFrom(c.table)
        .select([`${c.key} as k`, `${c.column} as v`])
        .where(c.column, 'is not', null)
        .where((eb) => eb(eb.fn('substr', [eb.ref(c.column), eb.lit(1), eb.lit(prefix.length)]), '!=', prefix));
      if (after !== undefined) q = q.where(c.key, '>', after);
      const rows = (await q.orderBy(c.key).limit(batchSize).execute()) as { k: string; v: string }[];
      if (rows.length === 0) break;
      // Decrypt and re-seal before the transaction, so it holds the write lock only for the UPDATEs.
      const replacements = rows.map((row) => ({ ...row, next: reseal(vault, c, row.k, row.v) }));
      const updated = await db.transaction().execute(async (trx) => {
        let n = 0;
        for (const r of replacements) {
          const u = await trx
            .updateTable(c.table)
            .set({ [c.column]: r.next })
            .where(c.key, '=', r.k)
            .where(c.column, '=', r.v)
            .executeTakeFirst();
          n += Number(u.numUpdatedRows);
        }
        return n;
      });
      result.resealed += updated;
      result.changed += rows.length - updated;
      after = rows[rows.length - 1]!.k;
      options.onProgress?.({ done: result.resealed + result.changed, total });
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  }
  return result;
}

function reseal(vault: Vault, c: SealedColumn, key: string, sealed: string): string {
  const aad = c.aad(key);
  let plaintext: string;
  try {
    plaintext = vault.open(sealed, aad);
  } catch (error) {
    if (error instanceof DecryptionFailed) {
      throw new DecryptionFailed(
        `${error.message} (${c.table}.${c.column}; values re-sealed before this one are saved, run again once the key ring holds its key)`,
      );
    }
    throw error;
  }
  return vault.seal(plaintext, aad);
}
