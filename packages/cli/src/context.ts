import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Command } from 'commander';
import {
  ConfigurationError,
  DEFAULT_DIR,
  loadVault,
  openBroker,
  openStore,
  readEnv,
  resolveConfig,
  type Broker,
  type Env,
  type ResolvedConfig,
  type ResolvedEmbedded,
  type Store,
  type Vault,
} from '@everyauth/core';
import { Output, type Format } from './output.js';

/** The process around the CLI; tests and embedders may pass their own. */
export interface CliIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** Options every command accepts (declared on the root program). */
export interface GlobalOptions {
  profile?: string;
  dir?: string;
  output: Format;
}

/** An embedded profile opened at the store level, for what the Broker interface does not cover (bundles, key rotation). */
export interface EmbeddedHandle {
  config: ResolvedEmbedded;
  store: Store;
  vault: Vault;
}

/** What a command's action gets: its output, its settings, and ways to open the broker or the store. */
export class Context {
  readonly out: Output;
  /** The EVERYAUTH_* variables, checked: a command refuses to run with a bad one. */
  readonly settings: Env;

  constructor(
    readonly io: CliIo,
    readonly globals: GlobalOptions,
  ) {
    this.out = new Output(globals.output, io.stdout, io.stderr, io.env);
    this.settings = readEnv(io.env);
  }

  get env(): NodeJS.ProcessEnv {
    return this.io.env;
  }

  /** The config folder: --dir, EVERYAUTH_DIR, or `.everyauth` in the working directory. */
  get dir(): string {
    return resolve(this.globals.dir ?? this.settings.EVERYAUTH_DIR ?? DEFAULT_DIR);
  }

  config(): Promise<ResolvedConfig> {
    return resolveConfig({ dir: this.dir, profile: this.globals.profile, env: this.env });
  }

  /** Logs go to stderr, so they never mix with results on stdout. */
  logger(): Logger {
    return pino({ name: 'everyauth', level: this.settings.EVERYAUTH_LOG_LEVEL ?? 'warn' }, pino.destination({ dest: 2, sync: true }));
  }

  /** Opens the profile's broker (local or remote), runs `fn`, and closes it whatever happens. */
  async withBroker<T>(fn: (broker: Broker, config: ResolvedConfig) => Promise<T>): Promise<T> {
    const config = await this.config();
    const broker = await openBroker(config, { env: this.env, logger: this.logger() });
    try {
      return await fn(broker, config);
    } finally {
      await broker.close();
    }
  }

  /**
   * Opens the store and vault of an embedded profile. `what` names the operation for the message
   * given on a remote profile, where the store is only reachable on the server's machine.
   */
  async withEmbedded<T>(what: string, fn: (handle: EmbeddedHandle) => Promise<T>): Promise<T> {
    const config = await this.config();
    if (config.mode !== 'embedded') {
      throw new ConfigurationError(
        `${what} works on the store itself, and this profile talks to the server ${config.server}. ` +
          "Run it on the server's machine with a profile (or EVERYAUTH_STORE and EVERYAUTH_MASTER_KEY) that points at the server's database and key.",
      );
    }
    const vault = await loadVault({ env: this.env, keyFile: config.keyFile });
    const store = await openStore(config.store);
    try {
      return await fn({ config, store, vault });
    } finally {
      await store.close();
    }
  }

  /** Opens only the store of an embedded profile (no master key needed), or hands back the remote profile. */
  async withStoreOrRemote<T>(fns: {
    local: (store: Store) => Promise<T>;
    remote: (server: string, apiKey: string) => Promise<T>;
  }): Promise<T> {
    const config = await this.config();
    if (config.mode === 'remote') return fns.remote(config.server, config.apiKey);
    const store = await openStore(config.store);
    try {
      return await fns.local(store);
    } finally {
      await store.close();
    }
  }

  /** All of standard input as text (a client secret, an API key), without the final newline. */
  async readStdin(what: string): Promise<string> {
    if (this.io.stdin.isTTY) this.io.stderr.write(`Enter ${what}, then press Ctrl-D:\n`);
    const chunks: Buffer[] = [];
    for await (const chunk of this.io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
}

/** The context of a command's action, from the global options commander parsed. */
export function contextOf(io: CliIo, command: Command): Context {
  return new Context(io, command.optsWithGlobals<GlobalOptions>());
}
