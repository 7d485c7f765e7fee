/**
 * The dead state: an identity whose refreshes have failed for the configured days (default 7) —
 * its grant gone (needs_reauth) and nobody reconnected it, or the provider refusing it all along —
 * becomes `dead`. It stays, with its id, tags and metadata, until the app deletes it or a reconnect
 * brings it back; getIdentity on it throws ReauthorizationRequired with `identityStatus: 'dead'`.
 */
import type { Events } from './events.js';
import { iso } from './identity-rows.js';
import type { Store } from './store/store.js';

export const DEFAULT_DEAD_AFTER_DAYS = 7;

/** Marks identities failing for longer than `deadAfterMs` dead, emitting `identity.dead` for each; returns how many. */
export async function markDeadIdentities(store: Store, events: Events, now: number, deadAfterMs: number, limit = 500): Promise<number> {
  const rows = await store.markDead(now - deadAfterMs, now, limit);
  for (const row of rows) {
    await events.emit('identity.dead', row, { previousStatus: row.status, failingSince: iso(row.failing_since) });
  }
  return rows.length;
}
