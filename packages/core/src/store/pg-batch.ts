import type pg from 'pg';

/** A point lookup by key columns, as a named statement: `<select> WHERE k1 = $1 AND … [LIMIT n]`. */
export interface KeyedLookupSpec {
  /** The statement's name; the batched one is named `<name>_batch`. */
  name: string;
  /** `SELECT <columns> FROM <table>`, the key columns among the columns (each row is given to the callers of its key). */
  select: string;
  /** The key columns, in parameter order; all of them text. */
  keys: readonly string[];
  /** Rows per key at most (the token read's `LIMIT 2` is its ambiguity check); none for a unique key. */
  limit?: number;
}

/** How a lookup reaches PostgreSQL: `pool.query` or the like. */
export type RunStatement = <R extends pg.QueryResultRow>(config: pg.QueryConfig) => Promise<pg.QueryResult<R>>;

/** One caller waiting for its rows from a batch. */
interface Waiter<R> {
  values: string[];
  resolve(rows: R[]): void;
  reject(err: unknown): void;
}

/**
 * Most statements of one lookup in flight at once. A lookup that finds fewer goes to PostgreSQL at
 * once, alone, as it always did; one that finds this many waits for the first of them to come back
 * and goes with every other lookup that queued meanwhile, as one statement. Measured with
 * `bench:server-token` on PostgreSQL: docs/performance.md.
 */
export const MAX_IN_FLIGHT = 2;
/** Keys per batched statement at most, so that one statement stays short (the rest wait for the next). */
const MAX_BATCH = 256;

/**
 * Coalesces concurrent lookups of one KeyedLookupSpec: under concurrency the cost of a read on
 * PostgreSQL is per round trip in `pg` and `pg-pool` (a socket write, a pool checkout and release,
 * a result parser set up per query), not in the SQL, so N lookups that wait for each other go as one
 * statement: `unnest` of the keys, each joined LATERAL to the same lookup with the same LIMIT, so a
 * key's rows (and the ambiguity check) are exactly what its own statement returns. Each caller gets
 * the rows whose key columns equal its key (PostgreSQL's text equality is byte equality, as is
 * JavaScript's), and a failed batch rejects every caller in it.
 */
export class CoalescedLookup<R extends pg.QueryResultRow> {
  private readonly one: { name: string; text: string };
  private readonly many: { name: string; text: string };
  private queue: Waiter<R>[] = [];
  private inFlight = 0;
  /** A statement came back: the reads that queued meanwhile may go. */
  private readonly done = () => {
    this.inFlight--;
    if (this.queue.length > 0) this.flush();
  };
  /** A lone statement's outcome; bound once, as they are on every lone read. */
  private readonly answered = (r: pg.QueryResult<R>) => {
    this.done();
    return r.rows;
  };
  private readonly failed = (err: unknown) => {
    this.done();
    throw err;
  };

  constructor(
    private readonly spec: KeyedLookupSpec,
    private readonly run: RunStatement,
  ) {
    const limit = spec.limit === undefined ? '' : ` LIMIT ${spec.limit}`;
    this.one = {
      name: spec.name,
      text: `${spec.select} WHERE ${spec.keys.map((k, i) => `${k} = $${i + 1}`).join(' AND ')}${limit}`,
    };
    // Inside the LATERAL subquery an unqualified column is the table's (the nearest scope), `batch.` the key's.
    this.many = {
      name: `${spec.name}_batch`,
      text:
        `SELECT found.* FROM unnest(${spec.keys.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS batch(${spec.keys.join(', ')}) ` +
        `CROSS JOIN LATERAL (${spec.select} WHERE ${spec.keys.map((k) => `${k} = batch.${k}`).join(' AND ')}${limit}) AS found`,
    };
  }

  /** The rows for one key, as the single statement would return them. */
  read(values: string[]): Promise<R[]> {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight++;
      try {
        return this.run<R>({ name: this.one.name, text: this.one.text, values }).then(this.answered, this.failed);
      } catch (err) {
        // No longer in flight, or the reads queued behind it would wait for ever.
        this.done();
        return Promise.reject(err);
      }
    }
    return new Promise<R[]>((resolve, reject) => this.queue.push({ values, resolve, reject }));
  }

  /** Sends what queued, in batches, while statements may be sent. */
  private flush(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
      this.queue = this.queue.length <= MAX_BATCH ? [] : this.queue.slice(MAX_BATCH);
      this.inFlight++;
      (batch.length === 1 ? this.sendOne(batch[0]!) : this.send(batch)).finally(this.done);
    }
  }

  /** A key that queued alone goes as the single statement: the same rows, a simpler plan. */
  private async sendOne(w: Waiter<R>): Promise<void> {
    try {
      w.resolve((await this.run<R>({ ...this.one, values: w.values })).rows);
    } catch (err) {
      w.reject(err);
    }
  }

  private async send(batch: Waiter<R>[]): Promise<void> {
    try {
      // A key asked for twice is sent once; its waiters share the answer.
      const byKey = groupBy(batch, (w) => w.values.join('\0'));
      const columns = this.spec.keys.map((_, c) => Array.from(byKey.values(), (ws) => ws[0]!.values[c]!));
      const { rows } = await this.run<R>({ ...this.many, values: columns });
      const found = groupBy(rows, (row) => this.spec.keys.map((k) => row[k] as string).join('\0'));
      for (const [key, waiters] of byKey) {
        const rows = found.get(key) ?? [];
        // Each caller its own objects, as from its own statement.
        waiters.forEach((w, i) => w.resolve(i === 0 ? rows : rows.map((r) => ({ ...r }))));
      }
    } catch (err) {
      // Settling twice is a no-op: callers already answered keep their rows, the rest get the error.
      for (const w of batch) w.reject(err);
    }
  }
}

/** `items` by `keyOf` each, in the order first seen (Map.groupBy, which Node 20 lacks). */
function groupBy<T>(items: Iterable<T>, keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
