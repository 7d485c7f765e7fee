import type { Command } from 'commander';
import { portNumber } from '../args.js';
import { contextOf, type CliIo } from '../context.js';
import { UsageError } from '../errors.js';
import { ensureEmbeddedDefaults } from './init.js';

interface ServeOptions {
  port?: number;
  host?: string;
  store?: string;
  baseUrl?: string;
  logLevel?: string;
  sandbox?: boolean;
}

export function registerServe(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description("run the EveryAuth server (REST API, hosted authorization flow, console) on this profile's store")
    .option('--port <port>', 'port to listen on (default EVERYAUTH_PORT, then 4000; 0 picks a free one)', portNumber)
    .option('--host <host>', 'address to listen on (default EVERYAUTH_HOST, then 127.0.0.1)')
    .option('--store <path|url>', "SQLite file or postgres:// URL (default: the profile's store)")
    .option('--base-url <url>', "public URL providers redirect back to (default: the profile's, then http://<host>:<port>)")
    .option('--log-level <level>', 'trace, debug, info, warn or error (default EVERYAUTH_LOG_LEVEL, then info)')
    .option('--sandbox', 'run the built-in sandbox provider (default on for a SQLite store)')
    .option('--no-sandbox', 'do not run the sandbox provider')
    .action(async (options: ServeOptions, command: Command) => {
      const ctx = contextOf(io, command);
      // A fresh checkout: `npm start` alone sets up the embedded default.
      if (!ctx.settings.EVERYAUTH_SERVER_URL && !options.store) await ensureEmbeddedDefaults(ctx);
      const config = await ctx.config();
      if (config.mode !== 'embedded') {
        throw new UsageError(
          `This profile uses the server ${config.server}; \`everyauth serve\` runs a server on a local store. Choose a local profile with --profile, or give --store.`,
          'serve',
        );
      }
      const { createApiKey, limitHeapGrowth, listApiKeys, startServer } = await import('@everyauth/server'); // Fastify loads only for this command
      // This process is the server's alone: trade some collector time for a heap that stays near its live size.
      limitHeapGrowth();
      const store = options.store ?? config.store;
      const adminKey = await firstAdminKey(store, listApiKeys, createApiKey);
      const server = await startServer({
        port: options.port,
        host: options.host,
        store,
        // The profile's base URL is only a default for embedded mode; the server's own origin fits better unless set.
        baseUrl: options.baseUrl ?? ctx.settings.EVERYAUTH_BASE_URL,
        env: ctx.env,
        keyFile: config.keyFile,
        logLevel: options.logLevel,
        handleSignals: true,
        sandbox: options.sandbox,
      });
      ctx.out.note(`EveryAuth server listening on ${server.url} (Ctrl-C to stop).`);
      ctx.out.note(`Console: ${server.url}/console/`);
      if (adminKey) {
        ctx.out.line(`Admin API key (shown once; sign in to the console with it): ${adminKey}`);
      }
      // Resolves never: the process ends on SIGINT/SIGTERM, after startServer has closed gracefully.
      await new Promise<never>(() => undefined);
    });
}

/** On a store with no API key yet, makes the first admin key, so the console can be signed in to. */
async function firstAdminKey(
  storeUrl: string,
  listApiKeys: typeof import('@everyauth/server').listApiKeys,
  createApiKey: typeof import('@everyauth/server').createApiKey,
): Promise<string | undefined> {
  const { openStore } = await import('@everyauth/core');
  const store = await openStore(storeUrl);
  try {
    if ((await listApiKeys(store)).length > 0) return undefined;
    return (await createApiKey(store, { name: 'first admin (everyauth serve)', scopes: ['admin'] })).key;
  } finally {
    await store.close();
  }
}
