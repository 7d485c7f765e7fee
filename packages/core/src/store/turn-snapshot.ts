// Node's own, not the global: a test's fake timers replace the global one, and would then hold a
// snapshot open for as long as they do not advance.
import { setImmediate } from 'node:timers';
import type BetterSqlite3 from 'better-sqlite3';

/** The snapshots open in this process now: a statement through any SQLite store's writer ends them all. */
const open = new Set<TurnSnapshot>();

/**
 * One read transaction for the reads of one event-loop turn, on a store's read-only connection.
 *
 * In WAL mode, a read outside a transaction takes a read lock on the WAL index and gives it back:
 * two `fcntl` calls, which on a VM cost more than the read itself (a token row by user: 9 µs, of
 * which 3 µs inside a transaction, measured with better-sqlite3 on 10,000 rows). Under load, many
 * requests' reads fall in one turn. The first read of a turn runs alone; from the second, the
 * turn's reads run in one read transaction (`BEGIN` takes its snapshot at the first read in it),
 * which ends when the turn does (`setImmediate`). A lone read stays a lone read: a transaction
 * around it would cost a `BEGIN` and a `COMMIT` more.
 *
 * What a read sees ({@link endTurnSnapshots}):
 * - every commit of this process: each statement a writer of this process runs ends every open
 *   snapshot first, so a read after a write starts a new one;
 * - every other process's commit up to the turn's second read. A read later in the same turn may
 *   thus miss a commit made since by another process, as if it had run a few microseconds earlier:
 *   the turn runs without waiting, and a writer elsewhere already races with any read. Whatever
 *   decides on what it read (a refresh's lease, fenced on the row's version) still writes through
 *   the writer, which sees the newest commit.
 * - A snapshot ends before the event loop waits for I/O (a pending `setImmediate` makes it poll
 *   without waiting), so it never holds back the WAL's checkpoint for long.
 */
export class TurnSnapshot {
  private readsThisTurn = 0;
  private inTransaction = false;
  private readonly begin: BetterSqlite3.Statement;
  private readonly commit: BetterSqlite3.Statement;

  constructor(connection: BetterSqlite3.Database) {
    this.begin = connection.prepare('BEGIN');
    this.commit = connection.prepare('COMMIT');
  }

  /** Runs one read statement, inside this turn's read transaction from the turn's second read on. */
  read<T>(statement: () => T): T {
    if (this.readsThisTurn++ === 0) setImmediate(this.endTurn);
    else if (!this.inTransaction) {
      this.begin.run();
      this.inTransaction = true;
      open.add(this);
    }
    return statement();
  }

  /** Ends the read transaction, if one is open, so that the next read sees every commit up to it. */
  end(): void {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    open.delete(this);
    this.commit.run();
  }

  private readonly endTurn = (): void => {
    this.readsThisTurn = 0;
    this.end();
  };
}

/** Ends every open snapshot of this process: each SQLite writer calls it before it runs a statement. */
export function endTurnSnapshots(): void {
  for (const snapshot of open) snapshot.end();
}
