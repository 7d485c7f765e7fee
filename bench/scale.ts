/**
 * 1,000,000 identities of one service in PostgreSQL (BENCH_SCALE_IDENTITIES), and 1 % as many of a
 * second service created after them (so their ids, which sort by time, all come after), seeded
 * with COPY, served by the EveryAuth server in a process of its own (bench/scale-server.mjs, plain
 * JavaScript on the built packages, so its memory is the server's and not a TypeScript loader's;
 * the baseline routes run in a third process, so they add nothing to it).
 *
 * The database (BENCH_SCALE_DB, default everyauth_scale_<identities>) is kept after a run and
 * reused by the next one when it was seeded with the same number of identities (a table
 * `bench_scale_meta` says so, with the key ring and API key of the seed) and the store's
 * migrations apply to it (a migration the code has and the database lacks is run on it):
 * BENCH_SCALE_RESEED=1 seeds it again, BENCH_SCALE_DROP=1 drops it at the end. Use a database
 * name of your own per checkout (e.g. BENCH_SCALE_DB=bench_scale_base).
 *
 * Each lookup runs, in the same run and at the same concurrency, three ways:
 *   - sql:    the same SQL straight to PostgreSQL through `pg`, a named prepared statement where
 *             the server names it (unnamed for the tag queries, as the server sends them), with
 *             the same decryption for tokens: the database's floor;
 *   - route:  a bare Fastify route running that prepared statement, in a process like the
 *             server's (same script, its own `pg` pool): the floor for HTTP plus the query,
 *             without EveryAuth;
 *   - server: the EveryAuth route.
 * Prints req/s, p50 and p99 of each as the bench's clients saw them and, for the two HTTP ways,
 * as the process that served them measured them itself (from Node's `request` event to the
 * response's `finish`) with its CPU µs per request: on a busy machine the client's figures hold the time a
 * request waits for a core, the in-process ones much less of it, and the bare route's own figures
 * in the same run show how much the machine adds. Then `ratio:` lines (server ÷ sql and server ÷
 * route, client-observed and in-process), `goal:` lines for the issue's targets, the server's
 * resident memory at idle and its peak under the load, and saves `EXPLAIN (ANALYZE, BUFFERS)` of
 * every query the server ran (recorded in its process) to artifacts/scale-explain.txt.
 *
 *   npm run bench:scale     # BENCH_SCALE_IDENTITIES, BENCH_SCALE_LOOKUPS, BENCH_SCALE_CONCURRENCY, BENCH_PG,
 *                           # BENCH_SCALE_DB, BENCH_SCALE_RESEED, BENCH_SCALE_DROP,
 *                           # BENCH_SCALE_ONLY=<text> (only the lookups whose name holds it, e.g. "token")
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LISTED_COLUMNS, LocalBroker, Vault, createKeyRing, openStore, type KeyRing } from '@everyauth/core';
import { createApiKey } from '@everyauth/server';
import { copyRows } from './pg-copy.js';

const IDENTITIES = Number(process.env.BENCH_SCALE_IDENTITIES ?? 1_000_000);
const LOOKUPS = Number(process.env.BENCH_SCALE_LOOKUPS ?? 2_000);
const CONCURRENCY = Number(process.env.BENCH_SCALE_CONCURRENCY ?? 8);
/** A phase ends after LOOKUPS requests or this many seconds, whichever comes first (a slow plan must not hold the bench for many minutes). */
const PHASE_SECONDS = Number(process.env.BENCH_SCALE_PHASE_SECONDS ?? 15);
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const TEAMS = Math.max(1, Math.floor(IDENTITIES / 100)); // tag team=team-N: 100 identities per team
/** The second service's identities, created after the first's. */
const SMALL = Math.max(1, Math.floor(IDENTITIES / 100));
/** Only the lookups whose name holds this text (case-insensitive), to look at one of them quickly. */
const ONLY = process.env.BENCH_SCALE_ONLY?.toLowerCase();
const DB_NAME = process.env.BENCH_SCALE_DB ?? `everyauth_scale_${IDENTITIES}`;
/** The issue's targets, judged on the server's in-process p99 (the client's includes the machine's queueing). */
const GOALS: Record<string, number> = { 'token by user (decrypting)': 5, 'identities by tag (100 per page)': 15 };
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

const idOf = (i: number) => `idn_${String(i).padStart(12, '0')}`;
const pick = (n: number) => Math.floor(Math.random() * n);

/**
 * The lookups: the API path, and the SQL the server runs for it (as it ran it when this bench was
 * written; the EXPLAIN file shows what it runs now). `args` draws one request's parameters.
 */
interface Lookup {
  name: string;
  args: () => string[];
  path: (a: string[]) => string;
  sql: string;
  /** The SQL's parameters for these args. */
  params: (a: string[]) => unknown[];
  /** Decrypt the token set, as the token route does. */
  decrypt?: boolean;
  /**
   * Sent unnamed, planned with its values each time, as the server sends its listings: a named
   * statement gets a generic plan after five runs, which for tag queries and a service's pages is
   * far slower (docs/performance.md).
   */
  unnamed?: boolean;
}

/** What a listing reads: the summary's columns (store.ts). */
const LISTED = LISTED_COLUMNS.join(', ');

const LOOKUP_LIST: Lookup[] = [
  {
    name: 'identity by user',
    args: () => [`user-${pick(IDENTITIES)}`],
    path: ([u]) => `/v1/services/crm/identity?userId=${u}`,
    sql: 'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 LIMIT 2',
    params: ([u]) => ['crm', u],
  },
  {
    name: 'identity by user and tenant',
    args: () => {
      const i = pick(IDENTITIES);
      return [`user-${i}`, `tenant-${i % 1000}`];
    },
    path: ([u, t]) => `/v1/services/crm/identity?userId=${u}&tenantId=${t}`,
    sql: 'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 AND tenant_id = $3 LIMIT 2',
    params: ([u, t]) => ['crm', u, t],
  },
  {
    name: 'token by user (decrypting)',
    args: () => [`user-${pick(IDENTITIES)}`],
    path: ([u]) => `/v1/services/crm/token?userId=${u}`,
    sql: 'SELECT * FROM identities WHERE service_id = $1 AND user_id = $2 LIMIT 2',
    params: ([u]) => ['crm', u],
    decrypt: true,
  },
  {
    name: 'identities by tag (100 per page)',
    args: () => [`team-${pick(TEAMS)}`],
    path: ([t]) => `/v1/identities?serviceId=crm&tag=team=${t}&count=100`,
    sql:
      `SELECT ${LISTED} FROM identities WHERE service_id = $1 AND EXISTS (SELECT 1 FROM identity_tags WHERE identity_tags.identity_id = identities.id` +
      ' AND key = $2 AND value = $3) ORDER BY id LIMIT 101',
    params: ([t]) => ['crm', 'team', t],
    unnamed: true,
  },
  {
    name: 'identities by two tags (team and plan)',
    args: () => [`team-${pick(TEAMS)}`],
    path: ([t]) => `/v1/identities?serviceId=crm&tag=team=${t}&tag=plan=pro&count=100`,
    sql:
      `SELECT ${LISTED} FROM identities WHERE service_id = $1` +
      ' AND EXISTS (SELECT 1 FROM identity_tags WHERE identity_tags.identity_id = identities.id AND key = $2 AND value = $3)' +
      ' AND EXISTS (SELECT 1 FROM identity_tags WHERE identity_tags.identity_id = identities.id AND key = $4 AND value = $5) ORDER BY id LIMIT 101',
    params: ([t]) => ['crm', 'team', t, 'plan', 'pro'],
    unnamed: true,
  },
  {
    name: 'first page of the second service',
    args: () => [],
    path: () => `/v1/identities?serviceId=mail&count=100`,
    sql: `SELECT ${LISTED} FROM identities WHERE service_id = $1 ORDER BY id LIMIT 101`,
    params: () => ['mail'],
    unnamed: true,
  },
  {
    name: 'a page at a random offset (keyset cursor)',
    args: () => [idOf(pick(IDENTITIES))],
    path: ([after]) => `/v1/identities?serviceId=crm&count=100&next=${Buffer.from(after!).toString('base64url')}`,
    sql: `SELECT ${LISTED} FROM identities WHERE service_id = $1 AND id > $2 ORDER BY id LIMIT 101`,
    params: ([after]) => ['crm', after],
    unnamed: true,
  },
];

await main();

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  const url = PG_ADMIN.replace(/\/[^/]*$/, `/${DB_NAME}`);
  const children: ChildProcess[] = [];
  let sql: pg.Pool | undefined;
  try {
    const { ring, key } = await database(admin, url);
    const vault = Vault.fromKeyRing(ring);
    sql = new pg.Pool({ connectionString: url, max: CONCURRENCY });
    const server = await spawnServer('server', url, ring);
    children.push(server.child);
    const baseline = await spawnServer('baseline', url, ring);
    children.push(baseline.child);
    const headers = { authorization: `Bearer ${key}` };
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const stats = () => ask<ServerStats>(server.child, { op: 'stats' });
    /** The JavaScript heap beside the RSS: what the collector lets grow under load, apart from the code and Node's own. */
    const heap = (m: NodeJS.MemoryUsage) => `JavaScript heap ${mib(m.heapUsed)} used of ${mib(m.heapTotal)}`;
    /** Runs one phase of HTTP load and adds the figures of the process that served it, measured by that process. */
    const phase = async (to: Spawned, path: () => string, hdrs: Record<string, string>): Promise<Result> => {
      await ask(to.child, { op: 'phase-start' });
      const result = await http(to.url, path, hdrs, LOOKUPS);
      const inside = await ask<{ n: number; p50: number; p99: number; cpuUsPerRequest: number }>(to.child, { op: 'phase-end' });
      return inside.n ? { ...result, inside: { p50: inside.p50, p99: inside.p99, cpuUs: inside.cpuUsPerRequest } } : result;
    };

    // Warm-up: JIT, connection pools, prepared statements on both sides.
    // Indexed by each lookup's place in the full list: the baseline process numbers its routes by it.
    const lookups = [...LOOKUP_LIST.entries()].filter(([, l]) => !ONLY || l.name.toLowerCase().includes(ONLY));
    if (lookups.length === 0) throw new Error(`BENCH_SCALE_ONLY=${ONLY}: no lookup's name holds it`);
    for (const [n, lookup] of lookups) {
      await http(server.url, () => lookup.path(lookup.args()), headers, 200);
      await http(baseline.url, () => `/raw/${n}?p=${encodeURIComponent(JSON.stringify(lookup.params(lookup.args())))}`, {}, 200);
    }
    const idle = await stats();
    console.log(
      `server memory at idle: rss ${mib(idle.rss)}, ${heap(idle.memory)}, young generation ${mib(idle.youngGeneration)} (the baseline routes' process: rss ${mib((await ask<{ rss: number }>(baseline.child, { op: 'stats' })).rss)})`,
    );
    await ask(server.child, { op: 'recording', on: true });

    const columns = `${''.padEnd(28)}${'client p50 / p99'.padEnd(20)}${'client rate'.padEnd(12)}in-process p50 / p99, CPU per request`;
    const floor = await phase(baseline, () => '/bare', {});
    console.log(`\nbare Fastify route (HTTP alone, no query), ${CONCURRENCY} clients`);
    console.log(columns);
    console.log(`  bare route:               ${withInside(floor)}`);
    for (const [n, lookup] of lookups) {
      const direct = await direct_(sql, n, lookup, vault);
      const route = await phase(baseline, () => `/raw/${n}?p=${encodeURIComponent(JSON.stringify(lookup.params(lookup.args())))}`, {});
      const served = await phase(server, () => lookup.path(lookup.args()), headers);
      console.log(`\n${lookup.name}`);
      console.log(`  sql (pg, prepared):       ${direct.line}`);
      console.log(`  bare route + same sql:    ${withInside(route)}`);
      console.log(`  EveryAuth server:         ${withInside(served)}`);
      const r = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? (a / b).toFixed(2) : '-');
      console.log(
        `ratio: ${lookup.name}: client server÷sql p50 ${r(served.p50, direct.p50)} p99 ${r(served.p99, direct.p99)}, server÷route p50 ${r(served.p50, route.p50)} p99 ${r(served.p99, route.p99)};` +
          ` in-process server÷route p50 ${r(served.inside?.p50, route.inside?.p50)} p99 ${r(served.inside?.p99, route.inside?.p99)} CPU ${r(served.inside?.cpuUs, route.inside?.cpuUs)};` +
          ` server in-process÷sql p99 ${r(served.inside?.p99, direct.p99)}`,
      );
      const goal = GOALS[lookup.name];
      if (goal !== undefined && served.inside) {
        const within2x = lookup.decrypt ? `; ${served.inside.p99 <= 2 * direct.p99 ? 'within' : 'NOT within'} 2× of the sql's p99` : '';
        console.log(
          `goal: ${lookup.name} p99 < ${goal} ms: in-process ${served.inside.p99.toFixed(2)} ms (${served.inside.p99 < goal ? 'met' : 'NOT met'})${within2x};` +
            ` client-observed ${served.p99.toFixed(2)} ms, bare route's in the same run ${floor.p99.toFixed(2)} ms`,
        );
      }
    }

    const after = await stats();
    await ask(server.child, { op: 'recording', on: false });
    console.log(
      `\nserver memory under the load: peak rss ${mib(after.peakRss)} (now ${mib(after.rss)}, ${heap(after.memory)}, young generation ${mib(after.youngGeneration)})`,
    );
    await explain(sql, after.queries);
  } finally {
    await sql?.end();
    for (const child of children) {
      if (child.exitCode !== null) continue;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    if (process.env.BENCH_SCALE_DROP === '1') await admin.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
    await admin.end();
  }
}

/**
 * The seeded database: reused when its `bench_scale_meta` says it holds IDENTITIES identities and the
 * store's migrations run on it (bringing it to this code's schema); else created and seeded anew.
 */
async function database(admin: pg.Client, url: string): Promise<{ ring: KeyRing; key: string }> {
  const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME])).rowCount === 1;
  if (exists && process.env.BENCH_SCALE_RESEED !== '1') {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const meta = await client
        .query<{ identities: number; ring: string; api_key: string; seeded_at: Date }>('SELECT * FROM bench_scale_meta')
        .then((r) => r.rows[0])
        .catch(() => undefined);
      const migrations = async () => (await client.query('SELECT count(*)::int AS n FROM kysely_migration')).rows[0].n as number;
      if (meta?.identities === IDENTITIES) {
        const before = await migrations();
        const store = await openStore(url).catch(() => undefined); // a migration the code does not know: seed again
        if (store) {
          await store.close();
          const applied = (await migrations()) - before;
          if (applied > 0) await client.query('ANALYZE');
          console.log(
            `reusing database ${DB_NAME}, seeded ${meta.seeded_at.toISOString()}${applied ? ` (${applied} new migration(s) run on it)` : ''}; BENCH_SCALE_RESEED=1 seeds it again`,
          );
          return { ring: JSON.parse(meta.ring) as KeyRing, key: meta.api_key };
        }
      }
    } finally {
      await client.end();
    }
  }
  await admin.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB_NAME}`);
  const ring = createKeyRing();
  const started = Date.now();
  const key = await seed(url, Vault.fromKeyRing(ring));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  // The bench's own table: the seed's size, and the key ring and API key it was made with (a bench database's, nothing else's).
  await client.query('CREATE TABLE bench_scale_meta (identities integer, ring text, api_key text, seeded_at timestamptz DEFAULT now())');
  await client.query('INSERT INTO bench_scale_meta (identities, ring, api_key) VALUES ($1, $2, $3)', [
    IDENTITIES,
    JSON.stringify(ring),
    key,
  ]);
  await client.end();
  console.log(
    `seeded ${IDENTITIES} + ${SMALL} identities (${2 * IDENTITIES} tag rows) with COPY into ${DB_NAME} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return { ring, key };
}

/** Schema through the store's migrations, a service through the broker, then identities and tags with COPY. Returns an API key. */
async function seed(url: string, vault: Vault): Promise<string> {
  const store = await openStore(url);
  const broker = new LocalBroker({ store, vault, baseUrl: 'http://127.0.0.1:1' });
  await broker.putProvider({
    id: 'bench-idp',
    name: 'Bench IdP',
    docs: 'https://idp.example/docs',
    authorizationUrl: 'https://idp.example/authorize',
    tokenUrl: 'https://idp.example/token',
  });
  await broker.putService({ id: 'crm', providerId: 'bench-idp', clientId: 'c' });
  await broker.putService({ id: 'mail', providerId: 'bench-idp', clientId: 'c' });
  const { key } = await createApiKey(store, { name: 'scale', scopes: ['tokens:read'] });
  await broker.close();

  const now = Date.now();
  const far = now + 30 * 86400_000;
  await copyRows(
    url,
    'identities',
    [
      'id',
      'service_id',
      'tenant_id',
      'user_id',
      'status',
      'tokens',
      'expires_at',
      'scope',
      'profile',
      'tags',
      'version',
      'created_at',
      'updated_at',
    ],
    function* () {
      for (let i = 0; i < IDENTITIES; i++) {
        const id = idOf(i);
        const tags = `{"team":"team-${i % TEAMS}","plan":"${i % 3 === 0 ? 'pro' : 'free'}"}`;
        const tokens = vault.seal(JSON.stringify({ a: `tok_${i}`, r: `ref_${i}`, t: 'bearer', n: {} }), `identity:${id}`);
        yield [id, 'crm', `tenant-${i % 1000}`, `user-${i}`, 'active', tokens, far, 'read', `{"name":"User ${i}"}`, tags, 1, now, now];
      }
      for (let i = IDENTITIES; i < IDENTITIES + SMALL; i++) {
        const id = idOf(i);
        const tokens = vault.seal(JSON.stringify({ a: `tok_${i}`, r: `ref_${i}`, t: 'bearer', n: {} }), `identity:${id}`);
        yield [id, 'mail', '', `user-${i}`, 'active', tokens, far, 'read', `{"name":"User ${i}"}`, '{}', 1, now, now];
      }
    },
  );
  await copyRows(url, 'identity_tags', ['identity_id', 'key', 'value'], function* () {
    for (let i = 0; i < IDENTITIES; i++) {
      yield [idOf(i), 'team', `team-${i % TEAMS}`];
      yield [idOf(i), 'plan', i % 3 === 0 ? 'pro' : 'free'];
    }
  });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('VACUUM ANALYZE');
  await client.end();
  return key;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  line: string;
  /** As the server process measured it (HTTP ways only). */
  inside?: { p50: number; p99: number; cpuUs: number };
}

/** `count` operations (fewer if PHASE_SECONDS run out first), CONCURRENCY at a time, each timed. */
async function timed(count: number, op: () => Promise<boolean>): Promise<Result> {
  const latencies: number[] = [];
  let failures = 0;
  let issued = 0;
  const started = performance.now();
  const deadline = started + PHASE_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < count && performance.now() < deadline) {
        issued++;
        const t0 = performance.now();
        const ok = await op();
        latencies.push(performance.now() - t0);
        if (!ok) failures++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  const rps = Math.round(latencies.length / seconds);
  const [p50, p99] = [q(0.5), q(0.99)];
  const line = `${`${p50.toFixed(2)} / ${p99.toFixed(2)} ms`.padEnd(20)}${`${rps} req/s`.padEnd(12)}${failures ? `${failures} FAILED ` : ''}${latencies.length < count ? `(${latencies.length} in ${PHASE_SECONDS} s) ` : ''}`;
  return { rps, p50, p99, line };
}

function http(base: string, path: () => string, headers: Record<string, string>, count: number): Promise<Result> {
  return timed(count, async () => {
    const r = await fetch(base + path(), { headers });
    await r.arrayBuffer();
    return r.status === 200;
  });
}

/** A result's line with the server's own figures after the client's. */
function withInside(r: Result): string {
  return r.inside ? `${r.line}${r.inside.p50.toFixed(2)} / ${r.inside.p99.toFixed(2)} ms, ${Math.round(r.inside.cpuUs)} µs` : r.line;
}

function direct_(pool: pg.Pool, n: number, lookup: Lookup, vault: Vault): Promise<Result> {
  return timed(LOOKUPS, async () => {
    const { rows } = await pool.query({
      name: lookup.unnamed ? undefined : `direct_${n}`,
      text: lookup.sql,
      values: lookup.params(lookup.args()),
    });
    if (lookup.decrypt) JSON.parse(vault.open(rows[0].tokens, `identity:${rows[0].id}`));
    return rows.length > 0;
  });
}

/** EXPLAIN (ANALYZE, BUFFERS) of each recorded query with the parameters it first ran with, to artifacts/. */
async function explain(pool: pg.Pool, queries: [string, unknown[]][]): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  let out = `# bench:scale, ${IDENTITIES} identities, ${new Date().toISOString()}\n`;
  console.log(`\nqueries the server ran (EXPLAIN ANALYZE execution time):`);
  for (const [text, params] of queries) {
    if (!/^\s*select/i.test(text)) continue;
    const { rows } = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
    const plan = rows.map((r) => r['QUERY PLAN'] as string);
    out += `\n-- ${text}\n-- params: ${JSON.stringify(params)}\n${plan.join('\n')}\n`;
    const time = plan.find((l) => l.startsWith('Execution Time'))?.replace('Execution Time: ', '');
    console.log(`  ${time?.padStart(10)}  ${plan[0]!.trim().split('  (')[0]}  <-  ${text.slice(0, 110)}`);
  }
  writeFileSync(`${ARTIFACTS}scale-explain.txt`, out);
  console.log(`plans saved to artifacts/scale-explain.txt`);
}

/** What bench/scale-server.mjs's server process answers to `stats`. */
interface ServerStats {
  rss: number;
  peakRss: number;
  memory: NodeJS.MemoryUsage;
  /** V8's new space, both semi-spaces. */
  youngGeneration: number;
  /** The SQL texts the server ran while recording, each with the parameters it first ran with. */
  queries: [string, unknown[]][];
}

interface Spawned {
  url: string;
  child: ChildProcess;
}

/**
 * Starts bench/scale-server.mjs in `role` ("server": EveryAuth as `serve` runs it; "baseline": the
 * bare Fastify routes), each in a process of its own so the server's RSS is its own. Resolves
 * when it listens.
 */
function spawnServer(role: 'server' | 'baseline', url: string, ring: unknown): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...(process.env.BENCH_PROFILE && role === 'server' ? ['--cpu-prof', `--cpu-prof-dir=${ARTIFACTS}`] : []),
        fileURLToPath(new URL('scale-server.mjs', import.meta.url)),
        role,
      ],
      {
        env: {
          ...process.env,
          STORE_URL: url,
          EVERYAUTH_MASTER_KEY: JSON.stringify(ring),
          EVERYAUTH_LOG_LEVEL: 'info',
          BENCH_BASELINE_SQL: JSON.stringify(LOOKUP_LIST.map((l) => ({ sql: l.sql, decrypt: l.decrypt, unnamed: l.unnamed }))),
          BENCH_POOL: String(CONCURRENCY),
        },
        // The server logs to stdout at its default level (info), as in production; read and dropped.
        stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      },
    );
    child.stdout!.resume();
    child.once('message', (m: { op: string; url: string }) => resolve({ url: m.url, child }));
    child.on('exit', (code) => reject(new Error(`${role} process exited ${code}`)));
  });
}

/** Sends the process a question (bench/scale-server.mjs's `answers`) and resolves to its answer. */
function ask<T = unknown>(child: ChildProcess, message: { op: string; on?: boolean }): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: T & { op: string }) => {
      if (m.op !== message.op) return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.send(message);
  });
}
