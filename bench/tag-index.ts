/**
 * Which index serves tag lookups on PostgreSQL: the `identity_tags (key, value, identity_id)` side
 * table EveryAuth keeps, or a GIN index (jsonb_path_ops) on a `jsonb` copy of the tags queried with
 * `@>`. Raw SQL through `pg` with prepared statements, the same rows in both, in the same run:
 * a selective tag (100 matches), two tags, and a common tag (a third of all rows) — each the first
 * page of 100 in id order, as the API pages — plus the size of each index and the time to load it.
 *
 *   npm run bench:tag-index     # BENCH_TAG_IDENTITIES (default 300,000), BENCH_TAG_LOOKUPS, BENCH_PG
 */
import pg from 'pg';
import { copyRows } from './pg-copy.js';

const IDENTITIES = Number(process.env.BENCH_TAG_IDENTITIES ?? 300_000);
const LOOKUPS = Number(process.env.BENCH_TAG_LOOKUPS ?? 1_000);
const CONCURRENCY = 8;
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const TEAMS = Math.max(1, Math.floor(IDENTITIES / 100));

const idOf = (i: number) => `idn_${String(i).padStart(12, '0')}`;
const team = () => `team-${Math.floor(Math.random() * TEAMS)}`;

const side = (n: number) =>
  Array.from(
    { length: n },
    (_, k) => `EXISTS (SELECT 1 FROM identity_tags t WHERE t.identity_id = i.id AND t.key = $${2 * k + 1} AND t.value = $${2 * k + 2})`,
  ).join(' AND ');
const cases = [
  {
    name: 'one selective tag (team, 100 matches)',
    tags: () => [['team', team()]],
  },
  {
    name: 'two tags (team and plan)',
    tags: () => [
      ['team', team()],
      ['plan', 'pro'],
    ],
  },
  { name: 'one common tag (plan=pro, a third of all rows)', tags: () => [['plan', 'pro']] },
];

const dbName = `everyauth_tags_${Date.now().toString(36)}`;
const admin = new pg.Client({ connectionString: PG_ADMIN });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const url = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
pool.on('error', () => undefined); // idle clients cut off by the DROP at the end
try {
  await pool.query(
    `CREATE TABLE identities (id text PRIMARY KEY, service_id text NOT NULL, tags text NOT NULL, tags_jsonb jsonb NOT NULL, profile text NOT NULL)`,
  );
  await pool.query(
    `CREATE TABLE identity_tags (identity_id text NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (identity_id, key))`,
  );
  const tagsOf = (i: number) => `{"team":"team-${i % TEAMS}","plan":"${i % 3 === 0 ? 'pro' : 'free'}"}`;
  await copyRows(url, 'identities', ['id', 'service_id', 'tags', 'tags_jsonb', 'profile'], function* () {
    for (let i = 0; i < IDENTITIES; i++) yield [idOf(i), 'crm', tagsOf(i), tagsOf(i), `{"name":"User ${i}"}`];
  });
  await copyRows(url, 'identity_tags', ['identity_id', 'key', 'value'], function* () {
    for (let i = 0; i < IDENTITIES; i++) {
      yield [idOf(i), 'team', `team-${i % TEAMS}`];
      yield [idOf(i), 'plan', i % 3 === 0 ? 'pro' : 'free'];
    }
  });
  const build = async (ddl: string) => {
    const t0 = performance.now();
    await pool.query(ddl);
    return ((performance.now() - t0) / 1000).toFixed(1);
  };
  const btreeBuild = await build('CREATE INDEX identity_tags_key_value ON identity_tags (key, value, identity_id)');
  const ginBuild = await build('CREATE INDEX identities_tags_gin ON identities USING gin (tags_jsonb jsonb_path_ops)');
  await pool.query('VACUUM ANALYZE');
  const size = async (index: string) =>
    ((await pool.query(`SELECT pg_relation_size($1::regclass) AS n`, [index])).rows[0].n / 2 ** 20).toFixed(1);
  const sideSize = (await pool.query(`SELECT pg_total_relation_size('identity_tags') AS n`)).rows[0].n / 2 ** 20;
  console.log(`${IDENTITIES} identities, ${2 * IDENTITIES} tag rows; ${CONCURRENCY} clients, ${LOOKUPS} lookups per line`);
  console.log(
    `identity_tags (key, value, identity_id): index ${await size('identity_tags_key_value')} MiB built in ${btreeBuild} s (side table with its key: ${sideSize.toFixed(1)} MiB)`,
  );
  console.log(`GIN (jsonb_path_ops) on tags_jsonb:      index ${await size('identities_tags_gin')} MiB built in ${ginBuild} s`);

  // Named statements get a generic plan after five runs unless told otherwise: compared both ways.
  const custom = new pg.Pool({ connectionString: url, max: CONCURRENCY, options: '-c plan_cache_mode=force_custom_plan' });
  custom.on('error', () => undefined);
  const run = async (name: string, sql: string, params: () => unknown[], on = pool) => {
    const latencies: number[] = [];
    let issued = 0;
    let rows = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (issued < LOOKUPS) {
          issued++;
          const t = performance.now();
          const result = await on.query({ name, text: sql, values: params() });
          rows += result.rowCount ?? 0;
          latencies.push(performance.now() - t);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.floor(p * (latencies.length - 1))]!.toFixed(2);
    const rps = Math.round(LOOKUPS / ((performance.now() - t0) / 1000));
    return {
      line: `${rps} lookups/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, ${(rows / LOOKUPS).toFixed(0)} rows each`,
      p99: Number(q(0.99)),
    };
  };
  for (const [n, c] of cases.entries()) {
    const count = c.tags().length;
    const viaSide = `SELECT i.* FROM identities i WHERE i.service_id = 'crm' AND ${side(count)} ORDER BY i.id LIMIT 101`;
    const viaGin = `SELECT i.* FROM identities i WHERE i.service_id = 'crm' AND i.tags_jsonb @> $1::jsonb ORDER BY i.id LIMIT 101`;
    const a = await run(`side_${n}`, viaSide, () => c.tags().flat());
    const b = await run(`gin_${n}`, viaGin, () => [JSON.stringify(Object.fromEntries(c.tags()))]);
    const ac = await run(`side_${n}`, viaSide, () => c.tags().flat(), custom);
    const bc = await run(`gin_${n}`, viaGin, () => [JSON.stringify(Object.fromEntries(c.tags()))], custom);
    console.log(`\n${c.name}`);
    console.log(`  identity_tags, prepared:             ${a.line}`);
    console.log(`  GIN @>, prepared:                    ${b.line}`);
    console.log(`  identity_tags, prepared, custom plan: ${ac.line}`);
    console.log(`  GIN @>, prepared, custom plan:        ${bc.line}`);
    console.log(
      `ratio: ${c.name}: GIN p99 ÷ identity_tags p99: ${(b.p99 / a.p99).toFixed(2)} prepared, ${(bc.p99 / ac.p99).toFixed(2)} with custom plans`,
    );
  }
  await custom.end();
} finally {
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}
