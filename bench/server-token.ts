/**
 * Token requests through the EveryAuth server as `everyauth serve` configures it (logging at info,
 * rate limiter on) — GET /v1/services/{id}/token?userId=…: API key, store read, decrypt, JSON —
 * against a bare Fastify route returning a constant, in the same run, and against a bare Fastify
 * route that calls the same broker's `getIdentity` (no API key, limiter, metrics or logging: what
 * the server's own plumbing adds is the difference),
 * on SQLite and on PostgreSQL. Load comes from autocannon in a second process, so the server's
 * process does nothing else. Rounds alternate between the targets; medians are reported.
 * Each store's section ends in `ratio: X`: the median over rounds of server req/s ÷ bare req/s in
 * the same round (a shared machine's speed drifts between rounds more than within one); targets
 * 0.5 (SQLite), 0.35 (PostgreSQL).
 *
 *   npm run bench:server-token        # BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_IDENTITIES, BENCH_STORES=sqlite,postgres,
 *                                     # BENCH_RATE_LIMIT=off (to see what the limiter costs)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { LocalBroker, Vault, createKeyRing, openStore } from '@everyauth/core';
import { buildServer, createApiKey, serverLogger } from '@everyauth/server';
import { jsonFromChild } from './child.js';
import { seedTokenBench } from './seed.js';
import { median, medianBy } from './median.js';

interface LoadResult {
  rps: number;
  /** Requests answered. */
  total: number;
  /** CPU time of this (the server's) process per request, in µs: steadier than req/s on a busy machine. */
  cpuUs?: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
// Pipelining keeps one load process able to saturate the server, so the figures are the server's, not the load generator's.
const PIPELINING = Number(process.env.BENCH_PIPELINING ?? 4);
const IDENTITIES = Number(process.env.BENCH_IDENTITIES ?? 1_000);
const STORES = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',');
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

if (process.argv[2] === '--load') await loadProcess();
else await main();

/** The second process: autocannon on the URL(s) given, printing its figures as one JSON line. */
async function loadProcess(): Promise<void> {
  // autocannon ships no types; its options and result are used as documented.
  const { default: autocannon } = (await import('autocannon' as string)) as { default: (options: Record<string, unknown>) => Promise<any> };
  const config = JSON.parse(process.argv[3]!) as {
    urls: string[];
    headers: Record<string, string>;
    seconds: number;
    connections: number;
    pipelining: number;
  };
  const paths = config.urls.map((u) => new URL(u).pathname + new URL(u).search);
  let i = 0;
  const result = await autocannon({
    url: config.urls[0]!,
    connections: config.connections,
    pipelining: config.pipelining,
    duration: config.seconds,
    headers: config.headers,
    // Each request asks for another user, so the figures are not one hot row's.
    requests: [{ setupRequest: (req: any) => Object.assign(req, { path: paths[i++ % paths.length] }) }],
  });
  const out: LoadResult = {
    rps: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
  console.log(JSON.stringify(out));
}

async function load(urls: string[], headers: Record<string, string>, seconds = SECONDS): Promise<LoadResult> {
  const cpu = process.cpuUsage();
  const result = await loadOnce(urls, headers, seconds);
  const used = process.cpuUsage(cpu);
  return { ...result, cpuUs: (used.user + used.system) / result.total };
}

function loadOnce(urls: string[], headers: Record<string, string>, seconds: number): Promise<LoadResult> {
  return jsonFromChild<LoadResult>(fileURLToPath(import.meta.url), [
    '--load',
    JSON.stringify({ urls, headers, seconds, connections: CONNECTIONS, pipelining: PIPELINING }),
  ]);
}

async function benchStore(kind: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-bench-'));
  const dbName = `everyauth_bench_${Date.now().toString(36)}`;
  let url = join(dir, 'everyauth.db');
  if (kind === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    url = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  }
  const store = await openStore(url);
  const vault = Vault.fromKeyRing(createKeyRing());
  // The server as `everyauth serve` runs it: logging at info (into a sink, so the terminal stays
  // readable; the lines are still made), the per-key rate limiter on (its limit out of reach).
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const app = await buildServer({
    logger: serverLogger('info', sink),
    apiKeyRateLimit: process.env.BENCH_RATE_LIMIT === 'off' ? false : { max: 1e9, timeWindowMs: 60_000 },
    backgroundRefresh: false,
    webhooks: false,
    broker: (onEvent) => new LocalBroker({ store, vault, baseUrl: 'http://127.0.0.1:1', onEvent, logger: pino({ level: 'warn' }) }),
  });
  const bare = Fastify();
  const constant = {
    accessToken: `gho_0_${'x'.repeat(36)}`,
    expiresAt: new Date().toISOString(),
    identityId: 'idn_bench00000000',
    serviceId: 'github',
    userId: 'user-0',
    tags: {},
    profile: { id: '0', name: 'User 0' },
    native: { scope: 'repo', token_type: 'bearer' },
  };
  bare.get('/v1/services/:serviceId/token', async () => constant);
  const floor = Fastify();
  floor.get<{ Params: { serviceId: string }; Querystring: { userId: string } }>('/v1/services/:serviceId/token', async (request) =>
    app.everyauth.broker.getIdentity(request.params.serviceId, request.query.userId),
  );
  try {
    await seedTokenBench(app.everyauth.broker, store, vault, IDENTITIES);
    const { key } = await createApiKey(store, { name: 'bench', scopes: ['tokens:read'] });
    const serverUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
    const floorUrl = await floor.listen({ port: 0, host: '127.0.0.1' });
    const users = Array.from(
      { length: Math.min(IDENTITIES, 500) },
      (_, i) => `/v1/services/github/token?userId=user-${Math.floor((i * IDENTITIES) / Math.min(IDENTITIES, 500))}`,
    );
    const headers = { authorization: `Bearer ${key}` };

    const check = await fetch(serverUrl + users[1], { headers });
    if (check.status !== 200) throw new Error(`token route answered ${check.status}: ${await check.text()}`);

    // Warm-up, then alternating rounds.
    await load(
      users.map((u) => bareUrl + u),
      {},
      2,
    );
    await load(
      users.map((u) => serverUrl + u),
      headers,
      2,
    );
    await load(
      users.map((u) => floorUrl + u),
      {},
      2,
    );
    const results = { bare: [] as LoadResult[], server: [] as LoadResult[], floor: [] as LoadResult[] };
    for (let r = 0; r < ROUNDS; r++) {
      results.bare.push(
        await load(
          users.map((u) => bareUrl + u),
          {},
        ),
      );
      results.server.push(
        await load(
          users.map((u) => serverUrl + u),
          headers,
        ),
      );
      results.floor.push(
        await load(
          users.map((u) => floorUrl + u),
          {},
        ),
      );
    }
    // Each round's own ratio: the rounds of one target are seconds apart from the other's, the medians of each target are not.
    const ratioOf = (xs: LoadResult[]) => median(xs.map((x, r) => x.rps / results.bare[r]!.rps));
    const cpuRatioOf = (xs: LoadResult[]) => median(xs.map((x, r) => results.bare[r]!.cpuUs! / x.cpuUs!));
    const b = medianBy(results.bare, (x) => x.rps);
    const s = medianBy(results.server, (x) => x.rps);
    const f = medianBy(results.floor, (x) => x.rps);
    const bad = results.server.reduce((n, x) => n + x.errors + x.non2xx, 0);
    console.log(
      `\n== ${kind} (${IDENTITIES} identities, ${CONNECTIONS} connections × ${PIPELINING} pipelined, ${ROUNDS} × ${SECONDS} s rounds, medians)`,
    );
    const cpu = (xs: LoadResult[]) => median(xs.map((x) => x.cpuUs!));
    console.log(
      `bare Fastify constant route: ${Math.round(b.rps)} req/s, p50 ${b.p50} ms, p99 ${b.p99} ms, ${cpu(results.bare).toFixed(0)} µs CPU per request`,
    );
    console.log(
      `EveryAuth token route:       ${Math.round(s.rps)} req/s, p50 ${s.p50} ms, p99 ${s.p99} ms, ${cpu(results.server).toFixed(0)} µs CPU per request${bad ? ` (${bad} errors or non-2xx!)` : ''}`,
    );
    console.log(
      `bare route + getIdentity:    ${Math.round(f.rps)} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms, ${cpu(results.floor).toFixed(0)} µs CPU per request`,
    );
    console.log(`ratio: ${ratioOf(results.server).toFixed(2)} (CPU per request, bare ÷ server: ${cpuRatioOf(results.server).toFixed(2)})`);
    console.log(
      `ratio, bare route + getIdentity: ${ratioOf(results.floor).toFixed(2)} (CPU per request: ${cpuRatioOf(results.floor).toFixed(2)}); ` +
        `the server's own work (key, limiter, metrics, logging, schemas): ${(cpu(results.server) - cpu(results.floor)).toFixed(0)} µs CPU per request`,
    );
  } finally {
    await bare.close();
    await floor.close();
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    if (kind === 'postgres') {
      const admin = new pg.Client({ connectionString: PG_ADMIN });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    }
  }
}

async function main(): Promise<void> {
  for (const kind of STORES) await benchStore(kind);
}
