/**
 * bench:scale's server processes, in plain JavaScript on the built packages (`npm run build` first)
 * so their memory is their own and not a TypeScript loader's. Started twice, with a role:
 *
 *   - `server`:   the EveryAuth server as `serve` starts it, and nothing else of the bench's but
 *                 the figures below, so its resident memory is the server's;
 *   - `baseline`: a bare Fastify app with the baseline routes (a constant; the server's SQL
 *                 through its own `pg` pool, with the token route's decryption).
 *
 * Each process times its own requests, from the `request` event of Node's HTTP server to the
 * response's `finish` (everything Fastify and the route do, none of the time a request waits in
 * the client or the kernel before the process reads it), and its own CPU time. The bench asks for
 * those figures over the IPC channel (`process.send`), so neither process serves anything but its
 * own routes. The server process also records the SQL the server ran (once per text) and its peak
 * resident memory.
 *
 * Env: STORE_URL, EVERYAUTH_MASTER_KEY; baseline: BENCH_BASELINE_SQL (JSON list of { sql, decrypt, unnamed }), BENCH_POOL.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

const role = process.argv[2];

/** This phase's request times in ms, and the CPU time at its start. */
let phase = { times: [], cpu: process.cpuUsage() };
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request') {
    const started = performance.now();
    const times = phase.times;
    res.once('finish', () => times.push(performance.now() - started));
  }
  return emit.apply(this, arguments);
};

let peakRss = 0;
setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50).unref();
/** The server's SQL texts with the parameters each first ran with, while recording. */
const seen = new Map();
let recording = false;

/** The bench's questions, each answered with a message of the same `op`. */
const answers = {
  /** Starts a phase. */
  'phase-start': () => {
    phase = { times: [], cpu: process.cpuUsage() };
  },
  /** Ends it: the requests served, p50 and p99 inside the process, and CPU µs per request. */
  'phase-end': () => {
    const cpu = process.cpuUsage(phase.cpu);
    const list = phase.times.sort((a, b) => a - b);
    const q = (p) => list[Math.min(list.length - 1, Math.floor(p * list.length))];
    return { n: list.length, p50: q(0.5), p99: q(0.99), cpuUsPerRequest: list.length ? (cpu.user + cpu.system) / list.length : 0 };
  },
  recording: ({ on }) => {
    recording = on;
    peakRss = 0;
  },
  stats: () => ({
    rss: process.memoryUsage.rss(),
    peakRss,
    memory: process.memoryUsage(),
    // Both semi-spaces: V8 grows them under load (to 16 MB each by default on 64-bit) and keeps them until idle.
    youngGeneration: getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0,
    queries: [...seen],
  }),
};
process.on('message', (message) => process.send({ ...answers[message.op](message), op: message.op }));

if (role === 'server') {
  const { default: pg } = await import('pg');
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (first, second, ...rest) {
    const text = typeof first === 'string' ? first : first?.text;
    if (recording && text && !seen.has(text)) seen.set(text, (typeof first === 'string' ? second : first.values) ?? []);
    return query.call(this, first, second, ...rest);
  };
  const { limitHeapGrowth, startServer } = await import('@everyauth/server');
  limitHeapGrowth(); // as `everyauth serve` does
  const server = await startServer({
    port: 0,
    store: process.env.STORE_URL,
    handleSignals: true,
    sandbox: false,
    server: { apiKeyRateLimit: false, backgroundRefresh: false, webhooks: false },
  });
  process.send({ op: 'ready', url: server.url });
} else if (role === 'baseline') {
  const [{ default: Fastify }, { default: pg }, { loadVault }] = await Promise.all([
    import('fastify'),
    import('pg'),
    import('@everyauth/core'),
  ]);
  const lookups = JSON.parse(process.env.BENCH_BASELINE_SQL);
  const vault = await loadVault({ env: process.env });
  const pool = new pg.Pool({ connectionString: process.env.STORE_URL, max: Number(process.env.BENCH_POOL ?? 8) });
  const bare = Fastify();
  // The same SQL as the server's route, named or unnamed as the server sends it, with the parameters the bench drew.
  bare.get('/raw/:n', async (request) => {
    const lookup = lookups[Number(request.params.n)];
    const name = lookup.unnamed ? undefined : `raw_${request.params.n}`;
    const { rows } = await pool.query({ name, text: lookup.sql, values: JSON.parse(request.query.p) });
    if (!lookup.decrypt) return rows;
    return { accessToken: JSON.parse(vault.open(rows[0].tokens, `identity:${rows[0].id}`)).a, identityId: rows[0].id };
  });
  bare.get('/bare', async () => ({ id: 'idn_000000000000', userId: 'user-0' }));
  process.on('SIGTERM', () => void bare.close().then(() => pool.end().then(() => process.exit(0))));
  process.send({ op: 'ready', url: await bare.listen({ port: 0, host: '127.0.0.1' }) });
} else {
  throw new Error(`scale-server.mjs: give a role, "server" or "baseline", not ${role}`);
}
