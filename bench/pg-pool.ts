/**
 * How many PostgreSQL connections the token read wants: the by-user lookup (a named prepared
 * statement) from 64 concurrent callers through pools of different sizes, in the same run, in
 * rotating order: each lookup its own statement, and coalesced as the store sends them
 * (store/pg-batch.ts: those that wait go together, at most two statements in flight). With the
 * database on the same machine, connections beyond its cores only add contention; with a remote
 * one, more hide the network round trip. Each line also gives this process's CPU µs per lookup.
 *
 *   npm run bench:pg-pool     # BENCH_POOL_SIZES (default 2,4,8,16,32), BENCH_POOL_SECONDS, BENCH_PG
 */
import pg from 'pg';
import { CoalescedLookup } from '../packages/core/src/store/pg-batch.js';
import { copyRows } from './pg-copy.js';
import { median } from './median.js';

const SIZES = (process.env.BENCH_POOL_SIZES ?? '2,4,8,16,32').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_POOL_SECONDS ?? 3);
const ROUNDS = 3;
const CALLERS = 64;
const ROWS = 100_000;
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const SELECT = 'SELECT * FROM identities';
const SQL = `${SELECT} WHERE service_id = $1 AND user_id = $2 LIMIT 2`;
const WAYS = ['one statement each', 'coalesced'] as const;

const dbName = `everyauth_pool_${Date.now().toString(36)}`;
const admin = new pg.Client({ connectionString: PG_ADMIN });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const url = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
try {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(
    'CREATE TABLE identities (id text PRIMARY KEY, service_id text NOT NULL, user_id text NOT NULL, tokens text NOT NULL, UNIQUE (service_id, user_id))',
  );
  await copyRows(url, 'identities', ['id', 'service_id', 'user_id', 'tokens'], function* () {
    for (let i = 0; i < ROWS; i++) yield [`idn_${i}`, 'crm', `user-${i}`, 'x'.repeat(200)];
  });
  await setup.query('VACUUM ANALYZE');
  await setup.end();

  type Result = { rps: number; p99: number; cpuUs: number };
  const results = new Map<string, Result[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const size of round % 2 ? [...SIZES].reverse() : SIZES) {
      for (const way of WAYS) {
        const pool = new pg.Pool({ connectionString: url, max: size });
        pool.on('error', () => undefined); // a client still closing when the database is dropped
        const coalesced = new CoalescedLookup({ name: 'by_user', select: SELECT, keys: ['service_id', 'user_id'], limit: 2 }, (config) =>
          pool.query(config),
        );
        const lookup =
          way === 'coalesced'
            ? (userId: string) => coalesced.read(['crm', userId])
            : (userId: string) => pool.query({ name: 'by_user', text: SQL, values: ['crm', userId] });
        const latencies: number[] = [];
        const cpu = process.cpuUsage();
        const until = performance.now() + SECONDS * 1000;
        await Promise.all(
          Array.from({ length: CALLERS }, async () => {
            while (performance.now() < until) {
              const t = performance.now();
              await lookup(`user-${Math.floor(Math.random() * ROWS)}`);
              latencies.push(performance.now() - t);
            }
          }),
        );
        const used = process.cpuUsage(cpu);
        await pool.end();
        latencies.sort((a, b) => a - b);
        const key = `${way} ${size}`;
        results.set(key, [
          ...(results.get(key) ?? []),
          {
            rps: latencies.length / SECONDS,
            p99: latencies[Math.floor(0.99 * (latencies.length - 1))]!,
            cpuUs: (used.user + used.system) / latencies.length,
          },
        ]);
      }
    }
  }
  console.log(`${CALLERS} callers, ${ROWS} rows, ${ROUNDS} × ${SECONDS} s per pool size and way (medians)`);
  for (const way of WAYS) {
    const of = (size: number, f: (r: Result) => number) => median(results.get(`${way} ${size}`)!.map(f));
    const best = Math.max(...SIZES.map((s) => of(s, (r) => r.rps)));
    console.log(`\n${way}:`);
    for (const size of SIZES) {
      const rps = of(size, (r) => r.rps);
      console.log(
        `pool ${String(size).padStart(2)}: ${Math.round(rps)} lookups/s, p99 ${of(size, (r) => r.p99).toFixed(2)} ms, ` +
          `${of(size, (r) => r.cpuUs).toFixed(1)} µs CPU per lookup (ratio: ${(rps / best).toFixed(2)} of the best)`,
      );
    }
  }
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}
