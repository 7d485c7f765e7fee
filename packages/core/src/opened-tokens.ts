/**
 * The token sets this process opened last, by identity, each kept with the exact sealed text it was
 * opened from, so that reading the same row again skips AES-GCM and the JSON parse (about 7 µs of
 * the server's ~45 µs token route, measured with `bench:server-token`).
 *
 * Why this is safe:
 * - An entry is used only when the row read now holds the very same sealed text, under the same
 *   identity id. That text was authenticated when first opened, with the identity's id in its
 *   associated data; any other text (a refresh, a re-seal under a new key, a value copied in from
 *   another row) misses and is opened, and checked, again. The row is still read on every request,
 *   so a revoked, deleted or refreshed identity is seen at once.
 * - The process that keeps these already holds the master keys, which open every stored value: the
 *   plaintexts here widen nothing that a reader of this process's memory could not already get.
 * - The opened values are frozen, so no caller's change can reach the next reader.
 */

import { fnv1a } from './ids.js';

/** How many identities' token sets are kept; at about 1 KB each, a few MiB. */
const MAX_ENTRIES = 4_096;
/** Slots of the doorkeeper below, a power of two; cleared after a quarter of them were marked. */
const SLOTS = 1 << 16;

/**
 * Opened values by identity id; the oldest entry goes first once full. An identity is kept only
 * from its second read within a while (a doorkeeper, as in TinyLFU): keeping every value read once
 * made a sweep over more identities than fit (a job reading each user in turn, or random reads over
 * a million) cost about 2 µs more per read than not keeping them at all, in Map churn and garbage
 * collection of values that were never read again.
 */
export class OpenedTokens<T extends object> {
  readonly #entries = new Map<string, { sealed: string; value: T }>();
  /** A bit per hash slot: an identity whose slot is marked was read once already. */
  readonly #seen = new Uint8Array(SLOTS);
  #marked = 0;

  /** The value opened from `sealed` for `id`, when that is what this process opened last for it. */
  get(id: string, sealed: string): T | undefined {
    const entry = this.#entries.get(id);
    return entry?.sealed === sealed ? entry.value : undefined;
  }

  /** Keeps `value` (frozen, deeply) as what `sealed` opens to for `id`, unless this is the first read of `id` for a while; returns it. */
  set(id: string, sealed: string, value: T): T {
    if (!this.#entries.has(id)) {
      if (!this.#seenBefore(id)) return value;
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(id, { sealed, value: deepFreeze(value) });
    return value;
  }

  /** Whether `id` (or another id in its slot) was read since the last clearing; marks it if not. */
  #seenBefore(id: string): boolean {
    const slot = fnv1a(id) & (SLOTS - 1);
    if (this.#seen[slot] === 1) return true;
    this.#seen[slot] = 1;
    if (++this.#marked >= SLOTS / 4) {
      this.#seen.fill(0);
      this.#marked = 0;
    }
    return false;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
