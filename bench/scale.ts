/**
 * 1,000,000 identities in PostgreSQL (BENCH_SCALE_IDENTITIES), served by the EveryAuth server in a
 * second process: lookups by user and by tag through the API, p50/p99 latency, and the server's
 * memory (resident set and heap, from its own /metrics) before and after the load.
 *
 *   npm run bench:scale     # BENCH_SCALE_IDENTITIES, BENCH_SCALE_LOOKUPS, BENCH_PG
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { sql } from 'kysely';
import { Vault, createKeyRing, openStore } from '@everyauth/core';
import { createApiKey, startServer } from '@everyauth/server';

const IDENTITIES = Number(process.env.BENCH_SCALE_IDENTITIES ?? 1_000_000);
const LOOKUPS = Number(process.env.BENCH_SCALE_LOOKUPS ?? 2_000);
const CONCURRENCY = Number(process.env.BENCH_SCALE_CONCURRENCY ?? 8);
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Identities whose tokens are sealed for real, so token reads decrypt like in production. */
const SEALED = 10_000;
const TEAMS = 10_000; // tag team=team-N: 100 identities per team at 1M

if (process.argv[2] === '--serve') await serve();
else await main();

/** The server process: startServer on the database, printing its URL. */
async function serve(): Promise<void> {
  const server = await startServer({
    port: 0,
    store: process.env.STORE_URL!,
    logLevel: 'warn',
    handleSignals: true,
    server: { apiKeyRateLimit: false, backgroundRefresh: false, webhooks: false, processMetrics: true },
  });
  console.log(JSON.stringify({ ready: server.url }));
}

async function main(): Promise<void> {
  const dbName = `everyauth_scale_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  const ring = createKeyRing();
  const vault = Vault.fromKeyRing(ring);
  let child: ChildProcess | undefined;
  try {
    const store = await openStore(url);
    const started = Date.now();
    await store.db
      .insertInto('providers')
      .values({
        id: 'bench-idp',
        definition: JSON.stringify({
          id: 'bench-idp',
          name: 'Bench IdP',
          docs: 'https://idp.example/docs',
          authorizationUrl: 'https://idp.example/authorize',
          tokenUrl: 'https://idp.example/token',
        }),
        created_at: started,
        updated_at: started,
      })
      .execute();
    await store.db
      .insertInto('services')
      .values({
        id: 'crm',
        provider_id: 'bench-idp',
        client_id: 'c',
        client_secret: null,
        scopes: '[]',
        params: '{}',
        variables: '{}',
        created_at: started,
        updated_at: started,
      })
      .execute();
    // Rows generated inside PostgreSQL: a million inserts from here would measure the client, not the store.
    const far = Date.now() + 30 * 86400_000;
    await sql`
      INSERT INTO identities (id, service_id, tenant_id, user_id, status, tokens, expires_at, scope, profile, tags, version, lease_owner, lease_until, last_refresh_at, created_at, updated_at)
      SELECT 'idn_' || lpad(i::text, 12, '0'), 'crm', 'tenant-' || (i % 1000), 'user-' || i, 'active', 'unsealed', ${far}::bigint, 'read',
             '{"name":"User ' || i || '"}', '{"team":"team-' || (i % ${TEAMS}) || '","plan":"' || (CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END) || '"}',
             1, NULL, NULL, NULL, ${started}::bigint, ${started}::bigint
      FROM generate_series(0, ${IDENTITIES - 1}) AS i`.execute(store.db);
    await sql`
      INSERT INTO identity_tags (identity_id, key, value)
      SELECT 'idn_' || lpad(i::text, 12, '0'), 'team', 'team-' || (i % ${TEAMS}) FROM generate_series(0, ${IDENTITIES - 1}) AS i
      UNION ALL
      SELECT 'idn_' || lpad(i::text, 12, '0'), 'plan', CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END FROM generate_series(0, ${IDENTITIES - 1}) AS i`.execute(
      store.db,
    );
    // Real sealed tokens for a sample, spread over the id range.
    const step = Math.max(1, Math.floor(IDENTITIES / SEALED));
    const sample = Array.from({ length: Math.min(SEALED, IDENTITIES) }, (_, k) => k * step);
    for (let k = 0; k < sample.length; k += 1000) {
      await store.db.transaction().execute(async (trx) => {
        for (const i of sample.slice(k, k + 1000)) {
          const id = `idn_${String(i).padStart(12, '0')}`;
          await trx
            .updateTable('identities')
            .set({ tokens: vault.seal(JSON.stringify({ a: `tok_${i}`, r: `ref_${i}`, t: 'bearer', n: {} }), `identity:${id}`) })
            .where('id', '=', id)
            .execute();
        }
      });
    }
    await sql`ANALYZE`.execute(store.db);
    const { key } = await createApiKey(store, { name: 'scale', scopes: ['tokens:read'] });
    await store.close();
    console.log(`seeded ${IDENTITIES} identities (${2 * IDENTITIES} tag rows) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const server = await spawnServer(url, ring);
    child = server.child;
    const headers = { authorization: `Bearer ${key}` };
    const memory = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const read = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
      return `rss ${read('everyauth_process_resident_memory_bytes').toFixed(0)} MiB, heap used ${read('everyauth_nodejs_heap_size_used_bytes').toFixed(0)} MiB`;
    };
    console.log(`server memory at start: ${await memory()}`);

    const pick = () => Math.floor(Math.random() * IDENTITIES);
    await measure('warm-up', headers, server.url, () => `/v1/services/crm/identity?userId=user-${pick()}`, 200, true);
    await measure(
      'lookup by user (GET /v1/services/crm/identity?userId=)',
      headers,
      server.url,
      () => `/v1/services/crm/identity?userId=user-${pick()}`,
    );
    await measure('lookup by user and tenant', headers, server.url, () => {
      const i = pick();
      return `/v1/services/crm/identity?userId=user-${i}&tenantId=tenant-${i % 1000}`;
    });
    await measure(
      'lookup by tag (GET /v1/identities?tag=team=…, 100 per page)',
      headers,
      server.url,
      () => `/v1/identities?serviceId=crm&tag=team=team-${Math.floor(Math.random() * TEAMS)}&count=100`,
    );
    await measure(
      'lookup by two tags (team and plan)',
      headers,
      server.url,
      () => `/v1/identities?serviceId=crm&tag=team=team-${Math.floor(Math.random() * TEAMS)}&tag=plan=pro&count=100`,
    );
    await measure(
      'token by user (decrypting)',
      headers,
      server.url,
      () => `/v1/services/crm/token?userId=user-${sample[Math.floor(Math.random() * sample.length)]}`,
    );
    console.log(`server memory after the load: ${await memory()}`);
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

async function measure(
  name: string,
  headers: Record<string, string>,
  base: string,
  path: () => string,
  count = LOOKUPS,
  quiet = false,
): Promise<void> {
  const latencies: number[] = [];
  let failures = 0;
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < count) {
        issued++;
        const t0 = performance.now();
        const r = await fetch(base + path(), { headers });
        await r.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (r.status !== 200) failures++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (quiet) return;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(2);
  console.log(
    `${name}: ${count} requests, ${CONCURRENCY} concurrent, ${Math.round(count / seconds)} req/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms${failures ? `, ${failures} FAILED` : ''}`,
  );
}

function spawnServer(url: string, ring: unknown): Promise<{ url: string; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=@everyauth/source', fileURLToPath(import.meta.url), '--serve'],
      {
        env: { ...process.env, STORE_URL: url, EVERYAUTH_MASTER_KEY: JSON.stringify(ring) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
      if (line) resolve({ url: JSON.parse(line).ready, child });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}
