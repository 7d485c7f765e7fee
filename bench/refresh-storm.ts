/**
 * A refresh storm: 10,000 identities (BENCH_STORM_IDENTITIES) whose tokens all expire within the
 * same minute, on PostgreSQL, refreshed by the server's background refresher while callers keep
 * reading random identities' tokens through the broker. The provider is a local token endpoint
 * (RFC 6749 §5.1 answers) with a rate limit (BENCH_STORM_RATE requests/s, 429 with Retry-After
 * beyond it) and a fixed latency (BENCH_STORM_LATENCY_MS) that counts requests and the peak of
 * requests in flight.
 *
 * Prints the time until every identity is fresh, provider requests (must equal the identities:
 * one refresh each, no retries), 429s, the peak in flight against `refresh.maxConcurrentPerProvider`
 * (BENCH_STORM_CAP), and what the callers got: tokens served, and how many of those had expired
 * (must be 0). Counts the statements the process sends to PostgreSQL during the storm (every
 * `pg` client's `query`, patched below; pg_stat_statements needs a server restart to load) and
 * prints them per refresh, by statement: the callers' own lookups by user apart, as they are the
 * read path's and not the refresh's. Also the process's CPU time per refresh, steadier than the
 * time to all fresh on a busy machine.
 *
 *   npm run bench:refresh-storm
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { LocalBroker, Vault, createKeyRing, openStore } from '@everyauth/core';
import { buildServer } from '@everyauth/server';
import { seedTokenBench } from './seed.js';

const IDENTITIES = Number(process.env.BENCH_STORM_IDENTITIES ?? 10_000);
const RATE = Number(process.env.BENCH_STORM_RATE ?? 1_000);
const LATENCY_MS = Number(process.env.BENCH_STORM_LATENCY_MS ?? 10);
const CAP = Number(process.env.BENCH_STORM_CAP ?? 8);
const CALLERS = Number(process.env.BENCH_STORM_CALLERS ?? 16);
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Statements sent while `counting`, by their text; the bench's own polling is marked and left out. */
const statements = new Map<string, number>();
let counting = false;
const BENCH_MARK = '/* bench */ ';
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0] as string | { text?: string } | undefined;
  const text = typeof first === 'string' ? first : first?.text;
  if (counting && text && !text.startsWith(BENCH_MARK)) statements.set(text, (statements.get(text) ?? 0) + 1);
  return query.apply(this, args);
} as typeof pg.Client.prototype.query;
/**
 * The callers' token reads look their identity up by user, alone or coalesced with others
 * (store/pg-batch.ts: `… = batch.user_id`): the read path, counted apart.
 */
const isCallerLookup = (text: string) =>
  /WHERE "?service_id"? = (\$1|batch\.service_id) AND "?user_id"? = (\$2|batch\.user_id)/.test(text) && !/^\s*update/i.test(text);

/** The stand-in token endpoint: its counters, and a limit of RATE requests in any one-second window. */
const provider = { requests: 0, limited: 0, inflight: 0, peak: 0, recent: [] as number[] };

async function tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<void> {
  provider.requests++;
  const now = Date.now();
  while (provider.recent.length > 0 && provider.recent[0]! <= now - 1000) provider.recent.shift();
  if (provider.recent.length >= RATE) {
    provider.limited++;
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"rate_limited"}');
    return;
  }
  provider.recent.push(now);
  provider.inflight++;
  provider.peak = Math.max(provider.peak, provider.inflight);
  let body = '';
  for await (const chunk of req) body += chunk;
  const refresh = new URLSearchParams(body).get('refresh_token');
  await new Promise((r) => setTimeout(r, LATENCY_MS));
  provider.inflight--;
  res
    .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify({ access_token: `fresh_${provider.requests}`, token_type: 'Bearer', expires_in: 3600, refresh_token: refresh }));
}

const idp = createServer((req, res) => void tokenEndpoint(req, res));
await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
const tokenUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/token`;

const dbName = `everyauth_storm_${Date.now().toString(36)}`;
const admin = new pg.Client({ connectionString: PG_ADMIN });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const store = await openStore(PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`));
const vault = Vault.fromKeyRing(createKeyRing());
const app = await buildServer({
  logLevel: 'error',
  apiKeyRateLimit: false,
  webhooks: false,
  backgroundRefresh: { intervalMs: 1_000, aheadMs: 10 * 60_000, batch: 200, concurrency: CAP },
  broker: (onEvent) =>
    new LocalBroker({
      store,
      vault,
      baseUrl: 'http://127.0.0.1:1',
      onEvent,
      logger: pino({ level: 'error' }),
      refresh: { maxConcurrentPerProvider: CAP },
    }),
});
try {
  const broker = app.everyauth.broker;
  const seeded = Date.now();
  // Written an hour ago, expiring within the coming minute: due for refresh as soon as the server starts.
  await seedTokenBench(broker, store, vault, IDENTITIES, {
    tokenUrl,
    updatedAt: seeded - 3600_000,
    expiresAt: (i) => seeded + 20_000 + (i * 60_000) / IDENTITIES,
  });
  console.log(
    `${IDENTITIES} identities expiring between +20 s and +80 s; provider: ${RATE} requests/s, ${LATENCY_MS} ms per request; cap ${CAP} per provider; ${CALLERS} callers`,
  );

  const poll = new pg.Client({ connectionString: PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`) });
  await poll.connect();
  counting = true;
  const cpuAtStart = process.cpuUsage();
  const started = Date.now();
  await app.ready(); // starts the background refresher
  const callers = { served: 0, expired: 0, errors: new Map<string, number>() };
  let storming = true;
  const reading = Array.from({ length: CALLERS }, async () => {
    while (storming) {
      try {
        const fresh = await broker.getIdentity('github', `user-${Math.floor(Math.random() * IDENTITIES)}`);
        callers.served++;
        if (!fresh?.expiresAt || Date.parse(fresh.expiresAt) <= Date.now()) callers.expired++;
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'error';
        callers.errors.set(code, (callers.errors.get(code) ?? 0) + 1);
      }
    }
  });
  let stale = IDENTITIES;
  while (stale > 0 && Date.now() - started < 300_000) {
    await new Promise((r) => setTimeout(r, 200));
    const { rows } = await poll.query(`${BENCH_MARK}SELECT count(*)::int AS n FROM identities WHERE expires_at < $1`, [
      started + 30 * 60_000,
    ]);
    stale = rows[0].n;
  }
  const seconds = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  counting = false;
  storming = false;
  await Promise.all(reading);
  await poll.end();

  const check = (ok: boolean) => (ok ? 'ok' : 'FAILED');
  console.log(`all fresh after:        ${stale === 0 ? `${seconds.toFixed(1)} s` : `not within 300 s (${stale} left)`}`);
  console.log(
    `provider requests:      ${provider.requests} (${check(provider.requests === IDENTITIES)}: one per identity), ${provider.limited} answered 429`,
  );
  console.log(`peak in flight:         ${provider.peak} (${check(provider.peak <= CAP)}: cap ${CAP})`);
  console.log(
    `callers:                ${callers.served} tokens served, ${callers.expired} of them expired (${check(callers.expired === 0)})` +
      (callers.errors.size ? `, errors ${JSON.stringify(Object.fromEntries(callers.errors))}` : ''),
  );
  console.log(`provider throughput:    ${Math.round(provider.requests / seconds)} requests/s`);
  const refreshes = Math.max(1, provider.requests);
  // Steadier than the time to all fresh on a busy machine: this process (server, refresher, callers
  // and the stand-in provider together) competes for the cores with PostgreSQL and everything else.
  console.log(
    `process CPU:            ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, ${((cpu.user + cpu.system) / 1000 / refreshes).toFixed(2)} ms per refresh (callers' reads and the provider included)`,
  );
  const byText = [...statements].sort((a, b) => b[1] - a[1]);
  const callerReads = byText.filter(([t]) => isCallerLookup(t)).reduce((n, [, c]) => n + c, 0);
  const refreshPath = byText.filter(([t]) => !isCallerLookup(t));
  const total = refreshPath.reduce((n, [, c]) => n + c, 0);
  console.log(
    `store round trips:      ${(total / refreshes).toFixed(2)} per refresh (${total} in all; the callers' ${callerReads} statements looking up by user apart)`,
  );
  for (const [text, n] of refreshPath.slice(0, 12)) {
    console.log(`  ${(n / refreshes).toFixed(2).padStart(6)}  ${text.replace(/\s+/g, ' ').slice(0, 130)}`);
  }
} finally {
  await app.close();
  await store.close();
  idp.close();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}
