/**
 * Sortable ids: sorting by id sorts by creation, within one millisecond too (ULID's monotonic mode),
 * so a feed read `after` an id (GET /v1/events) misses none of the ids made in its millisecond.
 */
import { expect, it } from 'vitest';
import { sortableId } from '../src/ids.js';

it('ids made in one millisecond sort in the order they were made, and differ', () => {
  const made = Array.from({ length: 1_000 }, () => sortableId('evt_', 1_800_000_000_000));
  expect([...made].sort()).toEqual(made);
  expect(new Set(made).size).toBe(made.length);
});

it('ids of later milliseconds sort after, whatever their random part', () => {
  const made = [1_800_000_000_000, 1_800_000_000_000, 1_800_000_000_001, 1_800_000_000_001, 1_800_000_000_002].map((t) =>
    sortableId('evt_', t),
  );
  expect([...made].sort()).toEqual(made);
});

it('carries the millisecond it was made in, and 80 bits of randomness after it', () => {
  const id = sortableId('idn_', 0x0123456789ab);
  expect(id).toMatch(/^idn_[0-9a-hjkmnp-tv-z]{26}$/);
  expect(id.slice(4, 14)).toBe('014d2pf2db'); // 0x0123456789ab in Crockford base32
  expect(sortableId('idn_', 0x0123456789ab + 1).slice(14)).not.toBe(id.slice(14)); // a new millisecond: fresh random bits
});
