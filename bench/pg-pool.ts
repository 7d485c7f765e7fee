/**
 * How many PostgreSQL connections the token read wants: the by-user lookup (a named prepared
 * statement, as the store sends it) from 64 concurrent callers through pools of different sizes,
 * in the same run, in rotating order. With the database on the same machine, connections beyond
 * its cores only add contention; with a remote one, more hide the network round trip.
 *
 *   npm run bench:pg-pool     # BENCH_POOL_SIZES (default 2,4,8,16,32), BENCH_POOL_SECONDS, BENCH_PG
 */
import pg from 'pg';
import { copyRows } from './pg-copy.js';

const SIZES = (process.env.BENCH_POOL_SIZES ?? '2,4,8,16,32').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_POOL_SECONDS ?? 3);
const ROUNDS = 3;
const CALLERS = 64;
const ROWS = 100_000;
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const SQL = 'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 LIMIT 2';

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

  const results = new Map<number, { rps: number; p99: number }[]>(SIZES.map((s) => [s, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const size of round % 2 ? [...SIZES].reverse() : SIZES) {
      const pool = new pg.Pool({ connectionString: url, max: size });
      pool.on('error', () => undefined); // a client still closing when the database is dropped
      const latencies: number[] = [];
      const until = performance.now() + SECONDS * 1000;
      await Promise.all(
        Array.from({ length: CALLERS }, async () => {
          while (performance.now() < until) {
            const t = performance.now();
            await pool.query({ name: 'by_user', text: SQL, values: ['crm', `user-${Math.floor(Math.random() * ROWS)}`] });
            latencies.push(performance.now() - t);
          }
        }),
      );
      await pool.end();
      latencies.sort((a, b) => a - b);
      results.get(size)!.push({ rps: latencies.length / SECONDS, p99: latencies[Math.floor(0.99 * (latencies.length - 1))]! });
    }
  }
  console.log(`${CALLERS} callers, ${ROWS} rows, ${ROUNDS} × ${SECONDS} s per pool size (medians)`);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const best = Math.max(...SIZES.map((s) => median(results.get(s)!.map((r) => r.rps))));
  for (const size of SIZES) {
    const rps = median(results.get(size)!.map((r) => r.rps));
    const p99 = median(results.get(size)!.map((r) => r.p99));
    console.log(
      `pool ${String(size).padStart(2)}: ${Math.round(rps)} lookups/s, p99 ${p99.toFixed(2)} ms (ratio: ${(rps / best).toFixed(2)} of the best)`,
    );
  }
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}
