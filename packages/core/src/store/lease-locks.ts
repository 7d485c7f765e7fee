import pg from 'pg';
import { fnv1a } from '../ids.js';

/**
 * Ties this process's refresh leases to PostgreSQL sessions: the holder of an identity's lease
 * also holds an advisory lock keyed by the identity id, on a connection of its own that lives as
 * long as the process. When the process dies its sockets close, PostgreSQL ends the sessions and
 * frees their locks, and the other replicas see that in their next look at `pg_locks`, instead of
 * waiting for the lease's expiry. Advisory locks are per session (and re-entrant within it), so an
 * identity's lock is always taken and given back on the same session: the one its id hashes to,
 * among a few. The claims and writes run on these sessions (`query`), each waiting for its commit:
 * on one connection they would queue behind one another's.
 *
 * A session runs one statement at a time: each waits for the one before it on its session (`turn`).
 * `pg` queued them itself, but calling `query` on a client that is still busy is deprecated (pg 8.23
 * warns so; the queue goes in pg 9).
 */
export class LeaseLocks {
  private readonly sessions: (Promise<pg.Client> | undefined)[];
  /** Settles when each session's last statement does. */
  private readonly tails: Promise<unknown>[];

  /**
   * `types`: the store pool's type parsers, so that rows read on these sessions (lease claims) parse
   * alike. `sessions`: how many connections hold the locks.
   */
  constructor(
    private readonly connectionString: string,
    private readonly types?: pg.CustomTypesConfig,
    sessions = 4,
  ) {
    this.sessions = new Array<undefined>(sessions).fill(undefined);
    this.tails = this.sessions.map(() => Promise.resolve());
  }

  /** Takes the identity's lock, unless another session holds it. */
  async tryLock(identityId: string): Promise<boolean> {
    const r = await this.turn(identityId, (client) =>
      client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [identityId]),
    );
    return r.rows[0]!.ok;
  }

  /** Gives the lock back; a session that died meanwhile has freed it already. */
  async unlock(identityId: string): Promise<void> {
    await this.turn(identityId, (client) => client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [identityId])).catch(
      () => undefined,
    );
  }

  /**
   * Runs a statement on the session that holds (or takes) the identity's lock, so that a lease claim
   * or write and the lock are one round trip. A named statement is prepared once per session.
   */
  async query<R extends pg.QueryResultRow>(
    identityId: string,
    statement: { name?: string; text: string; values: unknown[] },
  ): Promise<R[]> {
    return (await this.turn(identityId, (client) => client.query<R>(statement))).rows;
  }

  async close(): Promise<void> {
    const sessions = this.sessions.splice(0, this.sessions.length, ...this.sessions.map(() => undefined));
    await Promise.all(sessions.map(async (session) => (await session?.catch(() => undefined))?.end()));
  }

  /** Runs `statement` on the identity's session once the statements before it there have settled. */
  private turn<T>(identityId: string, statement: (client: pg.Client) => Promise<T>): Promise<T> {
    const slot = fnv1a(identityId) % this.sessions.length;
    const result = this.tails[slot]!.then(() => this.connection(slot)).then(statement);
    this.tails[slot] = result.catch(() => undefined);
    return result;
  }

  /** A session (FNV-1a of an identity's id picks its slot), connected on first use and again after it broke. */
  private connection(slot: number): Promise<pg.Client> {
    const existing = this.sessions[slot];
    if (existing) return existing;
    const connected: Promise<pg.Client> = (async () => {
      const client = new pg.Client({
        connectionString: this.connectionString,
        application_name: 'everyauth-lease-locks',
        ...(this.types ? { types: this.types } : {}),
      });
      // A broken session (database restart) is replaced on the next call; its locks are gone with it.
      const forget = () => {
        if (this.sessions[slot] === connected) this.sessions[slot] = undefined;
      };
      client.on('error', forget);
      client.on('end', forget);
      await client.connect();
      return client;
    })();
    this.sessions[slot] = connected;
    connected.catch(() => {
      if (this.sessions[slot] === connected) this.sessions[slot] = undefined;
    });
    return connected;
  }
}

/** What `pg_locks` says about an identity's lease lock, and when the database server started. */
export interface LeaseLockState {
  /** Some session holds the identity's advisory lock. */
  held: boolean;
  /** Epoch ms: a restart frees every lock without any holder dying, so locks taken before it say nothing. */
  serverStartedAt: number;
}

/**
 * Asks, on any connection, whether the identity's lock is held. A bigint advisory key shows in
 * `pg_locks` split in two: its high 32 bits as `classid`, its low 32 bits as `objid`, with
 * `objsubid` 1 (PostgreSQL manual, 54.12 pg_locks).
 */
export async function leaseLockState(pool: pg.Pool, identityId: string): Promise<LeaseLockState> {
  const r = await pool.query<{ held: boolean; started: number }>({
    name: 'everyauth_lease_lock_state',
    text: `SELECT EXISTS (
             SELECT 1 FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::bigint = ((k.key >> 32) & 4294967295) AND l.objid::bigint = (k.key & 4294967295)
           ) AS held,
           (EXTRACT(EPOCH FROM pg_postmaster_start_time()) * 1000)::float8 AS started
           FROM (SELECT hashtextextended($1, 0) AS key) k`,
    values: [identityId],
  });
  return { held: r.rows[0]!.held, serverStartedAt: r.rows[0]!.started };
}
