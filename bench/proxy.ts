/**
 * The credential-injecting proxy against the same local API called directly, in one run:
 * - embedded: `broker.fetch` (service and identity read, token decrypt, target check, header
 *   filtering, undici) against Node's global `fetch` with the token already in hand, both in this
 *   process, `BENCH_CONNECTIONS` callers at once, each reading the whole body;
 * - server: `/v1/proxy/github/small` against the API directly, load from autocannon in a second
 *   process. The server runs as `everyauth serve` runs it: logging at info (into a sink), the
 *   per-key rate limiter on (its limit out of reach), a `proxy`-scoped API key;
 * - streaming: 1 GiB down and 1 GiB up through the server proxy, with this process's RSS growth
 *   (the server's; the API runs in its own process). Target: under 64 MiB.
 * The API is a plain node:http server in a child process. Each section prints `ratio: X`
 * (proxied req/s ÷ direct req/s); targets 0.8 embedded, 0.6 server. Each line also gives the CPU
 * time per request of every process taking part (steadier than req/s on a busy machine), and the
 * server section the ratio those allow when all the processes share the machine's cores.
 *
 *   npm run bench:proxy   # BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_STREAM_MIB,
 *                         # BENCH_SECTIONS=embedded,server,streaming
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Agent } from 'undici';
import { LocalBroker, Vault, createKeyRing, openStore } from '@everyauth/core';
import { buildServer, createApiKey, serverLogger } from '@everyauth/server';
import { jsonFromChild } from './child.js';
import { seedTokenBench } from './seed.js';
import { medianBy } from './median.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const STREAM_BYTES = Number(process.env.BENCH_STREAM_MIB ?? 1024) * 1024 * 1024;
const SECTIONS = (process.env.BENCH_SECTIONS ?? 'embedded,server,streaming').split(',');
const SMALL = JSON.stringify({ data: { gid: '1', name: 'A task', completed: false, notes: 'x'.repeat(300) } });

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  bad: number;
  /** CPU time per request of each process taking part, in µs. */
  cpu: Record<string, number>;
}

if (process.argv[2] === '--upstream') upstreamProcess();
else if (process.argv[2] === '--load') await loadProcess();
else await main();

/** The API: a small JSON answer, a download of `bytes` zeros, an upload it counts; `/cpu`, its CPU time. Prints its port. */
function upstreamProcess(): void {
  const chunk = Buffer.alloc(64 * 1024);
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://localhost');
    if (url.pathname === '/cpu') return res.end(JSON.stringify(cpuMicros()));
    if (url.pathname === '/api/download') {
      let left = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
      const write = () => {
        while (left > 0) {
          const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= part.length;
          if (!res.write(part)) return void res.once('drain', write);
        }
        res.end();
      };
      return write();
    }
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(url.pathname === '/api/upload' ? JSON.stringify({ bytes }) : SMALL);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, 'localhost', () => console.log(`port ${(server.address() as AddressInfo).port}`));
}

/**
 * The second process: autocannon on one URL, printing its figures as one JSON line, with its own
 * CPU time per request counted from its first one-second tick to its last (so that its start-up and
 * the summary at the end, fixed costs, do not weigh on a slow target's few requests).
 */
async function loadProcess(): Promise<void> {
  // autocannon ships no types; its options, events and result are used as documented.
  const { default: autocannon } = (await import('autocannon' as string)) as { default: (options: Record<string, unknown>) => any };
  const config = JSON.parse(process.argv[3]!) as { url: string; headers: Record<string, string>; seconds: number };
  const instance = autocannon({ url: config.url, connections: CONNECTIONS, duration: config.seconds, headers: config.headers });
  let first: number | undefined;
  let last = 0;
  let counted = 0;
  instance.on('tick', ({ counter }: { counter: number }) => {
    if (first === undefined) first = cpuMicros();
    else counted += counter;
    last = cpuMicros();
  });
  const r = await instance;
  const figures: Figures & { total: number } = {
    rps: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    bad: r.errors + r.timeouts + r.non2xx,
    cpu: { autocannon: (last - first!) / counted },
  };
  console.log(JSON.stringify(figures));
}

/** This process's CPU time, user and system, in µs. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function startUpstream(): Promise<{ origin: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@everyauth/source', fileURLToPath(import.meta.url), '--upstream'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const port = /port (\d+)/.exec(d.toString())?.[1];
      if (port) resolve({ origin: `http://localhost:${port}`, child });
    });
    child.on('exit', (code) => reject(new Error(`the upstream exited ${code}`)));
  });
}

/** The CPU time the API's process has used, in µs (asked over a connection of its own). */
async function upstreamCpu(origin: string): Promise<number> {
  return (await fetch(`${origin}/cpu`)).json() as Promise<number>;
}

/** `connections` callers in this process each looping `call` for SECONDS, reading each body; latencies in ms. */
async function loop(origin: string, call: () => Promise<Response>): Promise<Figures> {
  const latencies: number[] = [];
  let bad = 0;
  const upstream = await upstreamCpu(origin);
  const cpu = cpuMicros();
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const started = performance.now();
        const response = await call();
        await response.arrayBuffer();
        if (response.status !== 200) bad++;
        latencies.push(performance.now() - started);
      }
    }),
  );
  const n = latencies.length;
  const used = { caller: (cpuMicros() - cpu) / n, upstream: ((await upstreamCpu(origin)) - upstream) / n };
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number(latencies[Math.floor(n * q)]!.toFixed(2));
  return { rps: n / SECONDS, p50: at(0.5), p99: at(0.99), bad, cpu: used };
}

/**
 * autocannon in its own process (so the figures are the server's, not the load generator's), with
 * the CPU time of the API's process and, named `server`, of this one (left out when it only waits).
 */
async function autocannon(origin: string, url: string, headers: Record<string, string>, server?: string): Promise<Figures> {
  const upstream = await upstreamCpu(origin);
  const cpu = cpuMicros();
  const figures = await jsonFromChild<Figures & { total: number }>(fileURLToPath(import.meta.url), [
    '--load',
    JSON.stringify({ url, headers, seconds: SECONDS }),
  ]);
  const own = (cpuMicros() - cpu) / figures.total;
  const api = ((await upstreamCpu(origin)) - upstream) / figures.total;
  return { ...figures, cpu: { ...figures.cpu, ...(server ? { [server]: own } : {}), upstream: api } };
}

/** Alternating rounds of each target after a warm-up; the medians by req/s. */
async function compare<K extends string>(targets: Record<K, () => Promise<Figures>>): Promise<Record<K, Figures>> {
  const names = Object.keys(targets) as K[];
  for (const name of names) await targets[name]();
  const runs = Object.fromEntries(names.map((name) => [name, [] as Figures[]])) as Record<K, Figures[]>;
  for (let r = 0; r < ROUNDS; r++) for (const name of names) runs[name].push(await targets[name]());
  return Object.fromEntries(names.map((name) => [name, medianBy(runs[name], (x) => x.rps)])) as Record<K, Figures>;
}

function sum(cpu: Record<string, number>): number {
  return Object.values(cpu).reduce((a, b) => a + b, 0);
}

/**
 * Prints each target's figures and `ratio:` (proxied ÷ direct req/s). With `cpuBound`, also the
 * ratio the CPU times allow when every process shares the machine's cores and all are busy: req/s
 * is then at most cores ÷ the CPU time one request costs in all the processes together.
 */
function report(title: string, r: Record<string, Figures> & { direct: Figures; proxied: Figures }, cpuBound = false): void {
  const line = (f: Figures) =>
    `${Math.round(f.rps)} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms${f.bad ? ` (${f.bad} errors or non-200!)` : ''}; CPU µs per request: ` +
    Object.entries(f.cpu)
      .map(([who, us]) => `${who} ${us.toFixed(0)}`)
      .join(', ');
  console.log(`\n== ${title} (${CONNECTIONS} concurrent, ${ROUNDS} × ${SECONDS} s rounds, medians)`);
  const width = Math.max(...Object.keys(r).map((name) => name.length)) + 2;
  for (const [name, figures] of Object.entries(r)) console.log(`${`${name}:`.padEnd(width)}${line(figures)}`);
  const bound = (f: Figures) => (sum(r.direct.cpu) / sum(f.cpu)).toFixed(2);
  for (const [name, figures] of Object.entries(r)) {
    if (name === 'direct') continue;
    const label = name === 'proxied' ? 'ratio' : `${name} ratio`;
    console.log(
      `${label}: ${(figures.rps / r.direct.rps).toFixed(2)}${cpuBound ? ` (CPU-bound on shared cores: at most ${bound(figures)})` : ''}`,
    );
  }
}

/** Runs `transfer` while sampling RSS every 20 ms; the growth over the RSS before it, and the throughput. */
async function measured(transfer: () => Promise<number>): Promise<{ mib: number; mibPerS: number; growthMiB: number }> {
  globalThis.gc?.();
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  const started = performance.now();
  const bytes = await transfer();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  return { mib: bytes / 2 ** 20, mibPerS: bytes / 2 ** 20 / seconds, growthMiB: (peak - before) / 2 ** 20 };
}

async function main(): Promise<void> {
  const { origin, child } = await startUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'everyauth-bench-proxy-'));
  const store = await openStore(join(dir, 'everyauth.db'));
  const vault = Vault.fromKeyRing(createKeyRing());
  // The server as `everyauth serve` runs it: logging at info (into a sink, so the terminal stays
  // readable; the lines are still made), the per-key rate limiter on (its limit out of reach).
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const app = await buildServer({
    logger: serverLogger('info', sink),
    apiKeyRateLimit: { max: 1e9, timeWindowMs: 60_000 },
    backgroundRefresh: false,
    webhooks: false,
    broker: (onEvent) => new LocalBroker({ store, vault, baseUrl: 'http://127.0.0.1:1', onEvent, logger: pino({ level: 'warn' }) }),
  });
  const broker = app.everyauth.broker;
  let bare: FastifyInstance | undefined;
  try {
    await seedTokenBench(broker, store, vault, 100);
    await broker.putService({ id: 'github', apiBaseUrls: [`${origin}/api`] });
    const { accessToken } = (await broker.getIdentity('github', 'user-1'))!;
    const bearer = { authorization: `Bearer ${accessToken}` };

    if (SECTIONS.includes('embedded')) {
      report(
        'embedded: broker.fetch vs fetch with the token in hand',
        await compare({
          direct: () => loop(origin, () => fetch(`${origin}/api/small`, { headers: bearer })),
          proxied: () => loop(origin, () => broker.fetch('github', 'user-1', '/small')),
        }),
      );
    }

    const { key } = await createApiKey(store, { name: 'bench', scopes: ['proxy'] });
    const server = await app.listen({ port: 0, host: '127.0.0.1' });
    const proxyHeaders = { authorization: `Bearer ${key}`, 'everyauth-user-id': 'user-1' };
    bare = await bareForwarder(origin);
    const check = await fetch(`${server}/v1/proxy/github/small`, { headers: proxyHeaders });
    if (check.status !== 200) throw new Error(`the proxy answered ${check.status}: ${await check.text()}`);
    if (SECTIONS.includes('server')) {
      report(
        'server: /v1/proxy vs the API directly (autocannon in another process)',
        await compare({
          direct: () => autocannon(origin, `${origin}/api/small`, bearer),
          proxied: () => autocannon(origin, `${server}/v1/proxy/github/small`, proxyHeaders, 'EveryAuth server'),
          // What any proxy costs: the same hop with nothing of EveryAuth's (no key, no store, no rules).
          'bare forwarding': () => autocannon(origin, `${bare.listeningOrigin}/small`, bearer, 'bare forwarder'),
        }),
        true,
      );
    }
    if (SECTIONS.includes('streaming')) await streaming(server, proxyHeaders);
  } finally {
    await bare?.close();
    await app.close();
    await store.close();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A bare Fastify route in this process forwarding to the API with undici's `request()` and piping
 * the answer back: two HTTP hops and nothing else.
 */
async function bareForwarder(origin: string): Promise<FastifyInstance> {
  const bare = Fastify();
  const agent = new Agent();
  bare.get('/*', async (request, reply) => {
    const { host: _host, ...headers } = request.headers;
    const answer = await agent.request({ origin, path: `/api${request.url}`, method: 'GET', headers });
    const { connection: _c, 'keep-alive': _k, 'transfer-encoding': _t, ...fields } = answer.headers;
    return reply.code(answer.statusCode).headers(fields).send(answer.body);
  });
  bare.addHook('onClose', () => agent.close());
  await bare.listen({ port: 0, host: '127.0.0.1' });
  return bare;
}

/** STREAM_BYTES down and up through the server proxy, with the RSS growth of this (the server's) process. */
async function streaming(server: string, proxyHeaders: Record<string, string>): Promise<void> {
  console.log(`\n== streaming ${STREAM_BYTES / 2 ** 20} MiB through the server proxy (RSS of the server's process, limit 64 MiB)`);
  const down = await measured(
    () =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${server}/v1/proxy/github/download?bytes=${STREAM_BYTES}`, { headers: proxyHeaders }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
  );
  console.log(`download: ${down.mib.toFixed(0)} MiB at ${down.mibPerS.toFixed(0)} MiB/s, RSS growth ${down.growthMiB.toFixed(1)} MiB`);
  const up = await measured(async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    async function* body() {
      for (let sent = 0; sent < STREAM_BYTES; sent += chunk.length) yield chunk;
    }
    const answer = new Promise<number>((resolve, reject) => {
      const req = request(
        `${server}/v1/proxy/github/upload`,
        { method: 'PUT', headers: { ...proxyHeaders, 'content-type': 'application/octet-stream' } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          // The server's own answer (e.g. 408 when the upload outlasts its requestTimeoutMs) is reported, not read as a count.
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(JSON.parse(text).bytes)
              : reject(new Error(`the upload was answered ${res.statusCode}: ${text}`)),
          );
        },
      );
      req.on('error', reject);
      pipeline(Readable.from(body()), req).catch(reject);
    });
    return answer;
  });
  console.log(`upload:   ${up.mib.toFixed(0)} MiB at ${up.mibPerS.toFixed(0)} MiB/s, RSS growth ${up.growthMiB.toFixed(1)} MiB`);
  const worst = Math.max(down.growthMiB, up.growthMiB);
  console.log(`streaming RSS growth: ${worst.toFixed(1)} MiB (${worst < 64 ? 'under' : 'OVER'} 64 MiB)`);
}
