/**
 * One server replica as its own process, for the multi-replica tests: startServer with settings
 * from the environment; prints `{"ready":"<url>"}` once listening; SIGTERM closes it gracefully.
 */
import { startServer } from '@everyauth/server';

const env = process.env;
const background = Number(env.BACKGROUND_MS ?? 0);
const server = await startServer({
  port: Number(env.PORT),
  host: '127.0.0.1',
  store: env.STORE_URL!,
  baseUrl: env.BASE_URL,
  env,
  logLevel: env.LOG_LEVEL ?? 'warn',
  handleSignals: true,
  broker: { refresh: { leaseMs: Number(env.LEASE_MS ?? 30_000) }, providerTimeoutMs: 10_000 },
  server: {
    apiKeyRateLimit: false,
    backgroundRefresh: background > 0 ? { intervalMs: background, aheadMs: Number(env.AHEAD_MS ?? 60_000) } : false,
  },
});
console.log(JSON.stringify({ ready: server.url }));
