import { mkdtempSync, rmSync } from 'node:fs';
import { setImmediate } from 'node:timers';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore, type Store } from '@everyauth/core';

/**
 * The SQLite store's reads share one read transaction per event-loop turn (store/turn-snapshot.ts).
 * Each `await` below on a SQLite store call settles without leaving the turn (better-sqlite3 and
 * Kysely's SQLite driver are synchronous under their promises), so each test's reads up to its
 * `nextTurn()` fall in one turn.
 */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const definition = async (store: Store) => (await store.getProvider('p'))?.definition;

describe('reads in one event-loop turn (SQLite)', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'everyauth-snapshot-'));
    store = await openSqliteStore({ path: join(dir, 'everyauth.db') });
    await store.putProvider('p', 'v1', 1);
    await nextTurn();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("see this process's own write made after the turn's snapshot was taken", async () => {
    expect(await definition(store)).toBe('v1');
    expect(await definition(store)).toBe('v1'); // the second read of the turn: from here on, one read transaction
    await store.putProvider('p', 'v2', 2);
    expect(await definition(store)).toBe('v2');
  });

  it('see a write through another store of this process on the same file', async () => {
    const other = await openSqliteStore({ path: join(dir, 'everyauth.db') });
    try {
      await nextTurn();
      expect(await definition(store)).toBe('v1');
      expect(await definition(store)).toBe('v1');
      await other.putProvider('p', 'v2', 2);
      expect(await definition(store)).toBe('v2');
    } finally {
      await other.close();
    }
  });

  it("see another process's commit from the next turn on, and share one snapshot until then", async () => {
    // A connection of its own, as another process's writer would be: nothing of this process hears of its commit.
    const elsewhere = new BetterSqlite3(join(dir, 'everyauth.db'));
    try {
      expect(await definition(store)).toBe('v1');
      expect(await definition(store)).toBe('v1');
      elsewhere.prepare("UPDATE providers SET definition = 'v2' WHERE id = 'p'").run();
      // Still this turn's snapshot: as if this read had run before that commit.
      expect(await definition(store)).toBe('v1');
      await nextTurn();
      expect(await definition(store)).toBe('v2');
    } finally {
      elsewhere.close();
    }
  });

  it('a lone read in a turn sees what was committed before it', async () => {
    const elsewhere = new BetterSqlite3(join(dir, 'everyauth.db'));
    try {
      expect(await definition(store)).toBe('v1');
      await nextTurn();
      elsewhere.prepare("UPDATE providers SET definition = 'v2' WHERE id = 'p'").run();
      expect(await definition(store)).toBe('v2');
    } finally {
      elsewhere.close();
    }
  });

  it("ends with the turn while a test's fake timers hold the global setImmediate", async () => {
    const elsewhere = new BetterSqlite3(join(dir, 'everyauth.db'));
    vi.useFakeTimers({ toFake: ['setImmediate', 'setTimeout'] });
    try {
      expect(await definition(store)).toBe('v1');
      expect(await definition(store)).toBe('v1');
      elsewhere.prepare("UPDATE providers SET definition = 'v2' WHERE id = 'p'").run();
      await nextTurn(); // Node's own setImmediate (imported from node:timers above), which the fakes leave alone
      expect(await definition(store)).toBe('v2');
    } finally {
      vi.useRealTimers();
      elsewhere.close();
    }
  });

  it('closing the store with a snapshot open ends it: the end of the turn then has nothing to do', async () => {
    const second = await openSqliteStore({ path: join(dir, 'everyauth.db') });
    await nextTurn();
    await second.getProvider('p');
    await second.getProvider('p');
    await second.close();
    await nextTurn(); // an end of turn that ran COMMIT on the closed connection would throw here, uncaught
    expect(await definition(store)).toBe('v1');
  });
});
