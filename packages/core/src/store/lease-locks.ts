import pg from 'pg';

/**
 * Ties this process's refresh leases to a PostgreSQL session: the holder of an identity's lease
 * also holds an advisory lock keyed by the identity id, on a connection of its own that lives as
 * long as the process. When the process dies its socket closes, PostgreSQL ends the session and
 * frees its locks, and the other replicas see that in their next look at `pg_locks`, instead of
 * waiting for the lease's expiry. One session holds every lock of the process (advisory locks are
 * per session, and re-entrant within it).
 */
export class LeaseLocks {
  private session?: Promise<pg.Client>;

  /** `types`: the store pool's type parsers, so that rows read on this session (lease claims) parse alike. */
  constructor(
    private readonly connectionString: string,
    private readonly types?: pg.CustomTypesConfig,
  ) {}

  /** Takes the identity's lock, unless another session holds it. */
  async tryLock(identityId: string): Promise<boolean> {
    const client = await this.connection();
    const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [identityId]);
    return r.rows[0]!.ok;
  }

  /** Gives the lock back; a session that died meanwhile has freed it already. */
  async unlock(identityId: string): Promise<void> {
    const client = await this.connection().catch(() => undefined);
    await client?.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [identityId]).catch(() => undefined);
  }

  /**
   * Runs a statement on the session that holds the locks, so that a lease claim or write and its
   * lock are one round trip. A named statement is prepared once on the session.
   */
  async query<R extends pg.QueryResultRow>(statement: { name?: string; text: string; values: unknown[] }): Promise<R[]> {
    const client = await this.connection();
    return (await client.query<R>(statement)).rows;
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await (await session?.catch(() => undefined))?.end();
  }

  private connection(): Promise<pg.Client> {
    this.session ??= (async () => {
      const client = new pg.Client({
        connectionString: this.connectionString,
        application_name: 'everyauth-lease-locks',
        ...(this.types ? { types: this.types } : {}),
      });
      // A broken session (database restart) is replaced on the next call; its locks are gone with it.
      const forget = () => {
        if (this.session === connected) this.session = undefined;
      };
      client.on('error', forget);
      client.on('end', forget);
      await client.connect();
      return client;
    })();
    const connected = this.session;
    connected.catch(() => {
      if (this.session === connected) this.session = undefined;
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
