/**
 * The credential-injecting proxy against the same local API called directly, in one run:
 * - embedded: `broker.fetch` (token read, target check, header filtering, undici) against a plain
 *   `fetch` with the token already in hand, both in this process, `BENCH_CONNECTIONS` callers at once;
 * - server: `/v1/proxy/github/small` against the API directly, load from autocannon in a second process;
 * - streaming: 1 GiB down and 1 GiB up through the server proxy, with this process's RSS growth
 *   (the server's; the API runs in its own process). Target: under 64 MiB.
 * The API is a plain node:http server in a child process. Each section prints `ratio: X`
 * (proxied req/s ÷ direct req/s); targets 0.8 embedded, 0.6 server.
 *
 *   npm run bench:proxy        # BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_STREAM_MIB
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LocalBroker, Vault, createKeyRing, openStore } from '@everyauth/core';
import { buildServer, createApiKey } from '@everyauth/server';
import { seedTokenBench } from './seed.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const STREAM_BYTES = Number(process.env.BENCH_STREAM_MIB ?? 1024) * 1024 * 1024;
const SMALL = JSON.stringify({ data: { gid: '1', name: 'A task', completed: false, notes: 'x'.repeat(300) } });

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  bad: number;
}

if (process.argv[2] === '--upstream') upstreamProcess();
else await main();

/** The API: a small JSON answer, a download of `bytes` zeros, an upload it counts. Prints its port. */
function upstreamProcess(): void {
  const chunk = Buffer.alloc(64 * 1024);
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://localhost');
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

function startUpstream(): Promise<{ origin: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--upstream'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const port = /port (\d+)/.exec(d.toString())?.[1];
      if (port) resolve({ origin: `http://localhost:${port}`, child });
    });
    child.on('exit', (code) => reject(new Error(`the upstream exited ${code}`)));
  });
}

/** `connections` callers each looping `call` for SECONDS; latencies in ms. */
async function loop(call: () => Promise<Response>): Promise<Figures> {
  const latencies: number[] = [];
  let bad = 0;
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
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number(latencies[Math.floor(latencies.length * q)]!.toFixed(2));
  return { rps: latencies.length / SECONDS, p50: at(0.5), p99: at(0.99), bad };
}

/** autocannon in its own process (so the figures are the server's, not the load generator's). */
function autocannon(url: string, headers: Record<string, string>, seconds = SECONDS): Promise<Figures> {
  const bin = fileURLToPath(new URL('../node_modules/.bin/autocannon', import.meta.url));
  const args = [
    '-j',
    '-c',
    String(CONNECTIONS),
    '-d',
    String(seconds),
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]),
    url,
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      try {
        const r = JSON.parse(out);
        resolve({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, bad: r.errors + r.timeouts + r.non2xx });
      } catch {
        reject(new Error(`autocannon exited ${code} without a result`));
      }
    }),
  );
}

/** Alternating rounds after a warm-up; the medians by req/s. */
async function compare(direct: () => Promise<Figures>, proxied: () => Promise<Figures>): Promise<{ direct: Figures; proxied: Figures }> {
  await direct();
  await proxied();
  const runs = { direct: [] as Figures[], proxied: [] as Figures[] };
  for (let r = 0; r < ROUNDS; r++) {
    runs.direct.push(await direct());
    runs.proxied.push(await proxied());
  }
  const median = (xs: Figures[]) => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)]!;
  return { direct: median(runs.direct), proxied: median(runs.proxied) };
}

function report(title: string, r: { direct: Figures; proxied: Figures }): void {
  const line = (f: Figures) =>
    `${Math.round(f.rps)} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms${f.bad ? ` (${f.bad} errors or non-200!)` : ''}`;
  console.log(`\n== ${title} (${CONNECTIONS} concurrent, ${ROUNDS} × ${SECONDS} s rounds, medians)`);
  console.log(`direct:  ${line(r.direct)}`);
  console.log(`proxied: ${line(r.proxied)}`);
  console.log(`ratio: ${(r.proxied.rps / r.direct.rps).toFixed(2)}`);
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
  const app = await buildServer({
    logLevel: 'warn',
    apiKeyRateLimit: false,
    backgroundRefresh: false,
    webhooks: false,
    broker: (onEvent) => new LocalBroker({ store, vault, baseUrl: 'http://127.0.0.1:1', onEvent, logger: pino({ level: 'warn' }) }),
  });
  const broker = app.everyauth.broker;
  try {
    await seedTokenBench(broker, store, vault, 100);
    await broker.putService({ id: 'github', apiBaseUrls: [`${origin}/api`] });
    const { accessToken } = (await broker.getIdentity('github', 'user-1'))!;
    const bearer = { authorization: `Bearer ${accessToken}` };

    report(
      'embedded: broker.fetch vs fetch with the token in hand',
      await compare(
        () => loop(() => fetch(`${origin}/api/small`, { headers: bearer })),
        () => loop(() => broker.fetch('github', 'user-1', '/small')),
      ),
    );

    const { key } = await createApiKey(store, { name: 'bench', scopes: ['proxy'] });
    const server = await app.listen({ port: 0, host: '127.0.0.1' });
    const proxyHeaders = { authorization: `Bearer ${key}`, 'everyauth-user-id': 'user-1' };
    const check = await fetch(`${server}/v1/proxy/github/small`, { headers: proxyHeaders });
    if (check.status !== 200) throw new Error(`the proxy answered ${check.status}: ${await check.text()}`);
    report(
      'server: /v1/proxy vs the API directly (autocannon in another process)',
      await compare(
        () => autocannon(`${origin}/api/small`, bearer),
        () => autocannon(`${server}/v1/proxy/github/small`, proxyHeaders),
      ),
    );

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
            res.on('end', () => resolve(JSON.parse(text).bytes));
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
  } finally {
    await app.close();
    await store.close();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
