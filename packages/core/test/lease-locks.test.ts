import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLocks, leaseLockState } from '../src/store/lease-locks.js';
import { createTestDatabase } from './support/broker.js';

let db: { url: string; drop(): Promise<void> };
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('lease locks on PostgreSQL sessions', () => {
  it('one session at a time holds an identity; others see it held until it is given back', async () => {
    const mine = new LeaseLocks(db.url);
    const theirs = new LeaseLocks(db.url);
    try {
      expect((await leaseLockState(pool, 'ident_a')).held).toBe(false);
      expect(await mine.tryLock('ident_a')).toBe(true);
      expect((await leaseLockState(pool, 'ident_a')).held).toBe(true);
      expect((await leaseLockState(pool, 'ident_b')).held).toBe(false);
      expect(await theirs.tryLock('ident_a')).toBe(false);
      expect(await theirs.tryLock('ident_b')).toBe(true);
      await mine.unlock('ident_a');
      expect((await leaseLockState(pool, 'ident_a')).held).toBe(false);
      expect(await theirs.tryLock('ident_a')).toBe(true);
    } finally {
      await mine.close();
      await theirs.close();
    }
    expect((await leaseLockState(pool, 'ident_a')).held).toBe(false);
    expect((await leaseLockState(pool, 'ident_b')).held).toBe(false);
  });

  it('the locks of many identities, spread over several sessions, are each given back where they were taken', async () => {
    const mine = new LeaseLocks(db.url);
    const ids = Array.from({ length: 24 }, (_, i) => `ident_many_${i}`);
    try {
      for (const id of ids) expect(await mine.tryLock(id)).toBe(true);
      for (const id of ids) expect((await leaseLockState(pool, id)).held).toBe(true);
      const sessions = await pool.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'everyauth-lease-locks' AND datname = current_database()",
      );
      expect(sessions.rows[0].n).toBeGreaterThan(1);
      for (const id of ids) await mine.unlock(id);
      for (const id of ids) expect((await leaseLockState(pool, id)).held).toBe(false);
    } finally {
      await mine.close();
    }
  });

  it('runs one statement at a time on a session, in the order they came, without pg queueing them', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const mine = new LeaseLocks(db.url, undefined, 1);
    try {
      // All on one session, all at once: pg (8.23) warns when query() is called on a client still busy.
      const ids = Array.from({ length: 8 }, (_, i) => `ident_queue_${i}`);
      expect(await Promise.all(ids.map((id) => mine.tryLock(id)))).toEqual(ids.map(() => true));
      const seen = await Promise.all(ids.map((id) => mine.query<{ id: string }>(id, { text: 'SELECT $1::text AS id', values: [id] })));
      expect(seen.map((rows) => rows[0]!.id)).toEqual(ids);
      await Promise.all(ids.map((id) => mine.unlock(id)));
      for (const id of ids) expect((await leaseLockState(pool, id)).held).toBe(false);
    } finally {
      await mine.close();
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  it('reports when the server started, which frees every lock', async () => {
    const { serverStartedAt } = await leaseLockState(pool, 'x');
    expect(serverStartedAt).toBeGreaterThan(Date.UTC(2000, 0));
    expect(serverStartedAt).toBeLessThanOrEqual(Date.now() + 5_000);
  });

  it('a holder killed with SIGKILL: its lock is free within 2 s', async () => {
    const script = `const pg = require('pg');
      const c = new pg.Client(process.argv[1]);
      c.connect().then(() => c.query("SELECT pg_advisory_lock(hashtextextended('ident_killed', 0))")).then(() => console.log('locked'));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', script, db.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    expect((await leaseLockState(pool, 'ident_killed')).held).toBe(true);
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    while ((await leaseLockState(pool, 'ident_killed')).held) {
      expect(Date.now() - killedAt, 'the lock outlived its session').toBeLessThan(2_000);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
