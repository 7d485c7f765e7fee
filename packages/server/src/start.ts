import { createServer, type AddressInfo } from 'node:net';
import { LocalBroker, loadVault, openStore, readEnv, type LocalBrokerOptions } from '@everyauth/core';
import { buildServer, serverLogger, type BuildServerOptions } from './server.js';
import { sandboxWanted, serverSandbox } from './sandbox/index.js';

export interface StartServerOptions {
  /** Default: env EVERYAUTH_PORT, then 4000; 0 picks a free port. */
  port?: number;
  /** Default: env EVERYAUTH_HOST, then 127.0.0.1. */
  host?: string;
  /** A SQLite path or a postgres:// URL. */
  store: string;
  /** The public URL providers redirect back to; default env EVERYAUTH_BASE_URL, then http://<host>:<port>. */
  baseUrl?: string;
  env?: NodeJS.ProcessEnv;
  /** Key ring file when EVERYAUTH_MASTER_KEY is not set. */
  keyFile?: string;
  logLevel?: string;
  /** Close gracefully on SIGTERM and SIGINT (for `everyauth serve`). */
  handleSignals?: boolean;
  /** Passed through to the LocalBroker. */
  broker?: Pick<LocalBrokerOptions, 'refresh' | 'providerTimeoutMs' | 'sessionTtlMs'>;
  /** Run the sandbox authorization server (default: env EVERYAUTH_SANDBOX, else on for SQLite, off for PostgreSQL or NODE_ENV=production). */
  sandbox?: boolean;
  /** Passed through to buildServer. */
  server?: Omit<BuildServerOptions, 'broker' | 'store' | 'vault' | 'logger' | 'logLevel' | 'sandbox'>;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Runs the server: loads the vault, opens (and migrates) the store, serves a LocalBroker on it.
 * Env (see core's EnvSchema): EVERYAUTH_MASTER_KEY, EVERYAUTH_HOST, EVERYAUTH_PORT,
 * EVERYAUTH_BASE_URL, EVERYAUTH_LOG_LEVEL, EVERYAUTH_ALLOWED_ORIGINS, EVERYAUTH_RATE_LIMIT,
 * EVERYAUTH_SANDBOX. A bad value refuses to start with a ConfigurationError naming it.
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const rawEnv = options.env ?? process.env;
  const env = readEnv(rawEnv);
  const host = options.host ?? env.EVERYAUTH_HOST ?? '127.0.0.1';
  // The redirect URL names the port, so a free port is picked before the broker is made.
  const requested = options.port ?? env.EVERYAUTH_PORT ?? 4000;
  const port = requested === 0 ? await freePort(host) : requested;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const logger = serverLogger(options.logLevel ?? env.EVERYAUTH_LOG_LEVEL ?? 'info');
  const vault = await loadVault({ env: rawEnv, keyFile: options.keyFile });
  const store = await openStore(options.store);
  const rate = env.EVERYAUTH_RATE_LIMIT;
  const baseUrl = (options.baseUrl ?? env.EVERYAUTH_BASE_URL ?? origin).replace(/\/+$/, '');
  let app;
  try {
    app = await buildServer({
      ...options.server,
      store,
      vault,
      logger,
      apiKeyRateLimit:
        options.server?.apiKeyRateLimit ?? (rate === undefined ? undefined : rate > 0 ? { max: rate, timeWindowMs: 60_000 } : false),
      sandbox: sandboxWanted(options.store, rawEnv, options.sandbox) ? await serverSandbox(baseUrl, options.store) : undefined,
      broker: (onEvent) =>
        new LocalBroker({
          ...options.broker,
          store,
          vault,
          baseUrl,
          allowedRedirectOrigins: env.EVERYAUTH_ALLOWED_ORIGINS ?? [],
          logger,
          onEvent,
        }),
    });
    await app.listen({ port, host });
  } catch (err) {
    await app?.close().catch(() => undefined);
    await store.close();
    throw err;
  }
  const url = origin;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close(); // stops listening, lets in-flight requests and background refreshes finish
      await store.close();
    })());
  if (options.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      close().then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  logger.info({ url, store: store.dialect }, 'everyauth server listening');
  return { url, close };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
