/**
 * bench:scale's server process, in plain JavaScript on the built packages (`npm run build` first)
 * so its memory is the server's and not a TypeScript loader's: the EveryAuth server as `serve`
 * starts it, plus a bare Fastify app on another port with the baseline routes and the process's
 * own figures: resident memory, the SQL the server ran (recorded once per text), and for each
 * phase of the bench the time of every request inside this process, per port (from the `request`
 * event of Node's HTTP server to the response's `finish`: everything Fastify and the route do,
 * none of the time a request waits in the client or the kernel before the process reads it),
 * and the process's CPU time.
 *
 * Env: STORE_URL, EVERYAUTH_MASTER_KEY, BENCH_BASELINE_SQL (JSON list of { sql, decrypt, unnamed }), BENCH_POOL.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import pg from 'pg';
import { loadVault } from '@everyauth/core';
import { startServer } from '@everyauth/server';

const seen = new Map();
/** Marks the baseline route's queries, so that only the server's are recorded. */
const BASELINE = '/* baseline */ ';
let recording = false;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (first, second, ...rest) {
  const text = typeof first === 'string' ? first : first?.text;
  const baseline = text?.startsWith(BASELINE);
  if (recording && !baseline && text && !seen.has(text)) seen.set(text, (typeof first === 'string' ? second : first.values) ?? []);
  return query.call(this, first, second, ...rest);
};

/** This phase's request times in ms, by the port that served them. */
let phase = { times: new Map(), cpu: process.cpuUsage() };
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request' && !req.url.startsWith('/bench/')) {
    const started = performance.now();
    const times = phase.times;
    const port = this.address().port;
    res.once('finish', () => {
      let list = times.get(port);
      if (!list) times.set(port, (list = []));
      list.push(performance.now() - started);
    });
  }
  return emit.apply(this, arguments);
};

const server = await startServer({
  port: 0,
  store: process.env.STORE_URL,
  handleSignals: true,
  sandbox: false,
  server: { apiKeyRateLimit: false, backgroundRefresh: false, webhooks: false },
});

const lookups = JSON.parse(process.env.BENCH_BASELINE_SQL);
const vault = await loadVault({ env: process.env });
const pool = new pg.Pool({ connectionString: process.env.STORE_URL, max: Number(process.env.BENCH_POOL ?? 8) });
const bare = Fastify();
// The same SQL as the server's route, named or unnamed as the server sends it, with the parameters the bench drew.
bare.get('/raw/:n', async (request) => {
  const lookup = lookups[Number(request.params.n)];
  const name = lookup.unnamed ? undefined : `raw_${request.params.n}`;
  const { rows } = await pool.query({ name, text: BASELINE + lookup.sql, values: JSON.parse(request.query.p) });
  if (!lookup.decrypt) return rows;
  return { accessToken: JSON.parse(vault.open(rows[0].tokens, `identity:${rows[0].id}`)).a, identityId: rows[0].id };
});
bare.get('/bare', async () => ({ id: 'idn_000000000000', userId: 'user-0' }));
let peakRss = 0;
setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50).unref();
bare.post('/bench/recording', async (request) => {
  recording = request.body.recording;
  peakRss = 0;
  return {};
});
// Starts a phase; GET ends it: per port the requests served, p50 and p99 inside the process, and CPU µs per request.
bare.post('/bench/phase', async () => {
  phase = { times: new Map(), cpu: process.cpuUsage() };
  return {};
});
bare.get('/bench/phase', async () => {
  const cpu = process.cpuUsage(phase.cpu);
  const ports = {};
  let served = 0;
  for (const [port, list] of phase.times) {
    list.sort((a, b) => a - b);
    const q = (p) => list[Math.min(list.length - 1, Math.floor(p * list.length))];
    ports[port] = { n: list.length, p50: q(0.5), p99: q(0.99) };
    served += list.length;
  }
  return { ports, cpuUsPerRequest: served ? (cpu.user + cpu.system) / served : 0 };
});
bare.get('/bench/stats', async () => ({ rss: process.memoryUsage.rss(), peakRss, queries: [...seen] }));
const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ ready: server.url, bare: bareUrl }));
