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

/** How many identities' token sets are kept; at about 1 KB each, a few MiB. */
const MAX_ENTRIES = 4_096;

/** Opened values by identity id; the oldest entry goes first once full. */
export class OpenedTokens<T extends object> {
  readonly #entries = new Map<string, { sealed: string; value: T }>();

  /** The value opened from `sealed` for `id`, when that is what this process opened last for it. */
  get(id: string, sealed: string): T | undefined {
    const entry = this.#entries.get(id);
    return entry?.sealed === sealed ? entry.value : undefined;
  }

  /** Keeps `value` (frozen, deeply) as what `sealed` opens to for `id`; returns it. */
  set(id: string, sealed: string, value: T): T {
    if (this.#entries.size >= MAX_ENTRIES && !this.#entries.has(id)) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(id, { sealed, value: deepFreeze(value) });
    return value;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
