import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  ConfigFile,
  ConfigurationError,
  createKeyRing,
  MASTER_KEY_ENV,
  openStore,
  parseKeyMaterial,
  readConfigFile,
  readKeyRing,
  resolveConfig,
  writeKeyRing,
  type ConfigProfile,
} from '@everyauth/core';
import { contextOf, type CliIo, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { shown, writeFileAtomic } from '../fsutil.js';

interface InitOptions {
  server?: string;
  apiKey?: string;
  store?: string;
  keyFile?: string;
  baseUrl?: string;
  force?: boolean;
}

export function registerInit(program: Command, io: CliIo): void {
  program
    .command('init')
    .description('set up .everyauth/: config, a SQLite store and a new master key (or, with --server, a profile for a remote server)')
    .option('--server <url>', 'use an EveryAuth server instead of a local store')
    .option('--api-key <key>', 'the server API key ("-" reads it from standard input)')
    .option('--store <path|url>', 'SQLite file or postgres:// URL (default .everyauth/everyauth.db)')
    .option('--key-file <path>', 'master key file (default .everyauth/master.key)')
    .option('--base-url <url>', 'public URL the providers redirect back to (default http://localhost:3000)')
    .option('--force', 'replace an existing master key (values sealed under it become unreadable) or an invalid config')
    .addHelpText('after', '\nThe profile is named by --profile (default "default") and becomes the active one.')
    .action(async (options: InitOptions, command: Command) => {
      const ctx = contextOf(io, command);
      if (options.server !== undefined || options.apiKey !== undefined) await initRemote(ctx, options);
      else await initEmbedded(ctx, options);
    });
}

async function initRemote(ctx: Context, options: InitOptions): Promise<void> {
  if (!options.server || !options.apiKey)
    throw new UsageError(
      'A remote profile needs both --server <url> and --api-key <key> (or --api-key - to read it from standard input).',
      'init',
    );
  if (options.store || options.keyFile || options.baseUrl)
    throw new UsageError(
      '--store, --key-file and --base-url belong to a local profile; a remote profile only takes --server and --api-key.',
      'init',
    );
  const server = checkedUrl(options.server, '--server');
  const apiKey = options.apiKey === '-' ? (await ctx.readStdin('the API key')).trim() : options.apiKey;
  if (!apiKey) throw new UsageError('The API key is empty.', 'init');
  const name = ctx.globals.profile ?? 'default';
  const configPath = await saveProfile(ctx, name, { mode: 'remote', server, apiKey }, options.force === true);
  if (ctx.out.json) return ctx.out.data({ profile: name, mode: 'remote', server, config: configPath });
  ctx.out.line(`Wrote ${shown(configPath)}: profile "${name}" (active) uses the server ${server}.`);
  ctx.out.note('Next: `everyauth service ls` to check the connection.');
}

/**
 * What `everyauth serve` does on a fresh checkout: the embedded default profile, its master key and
 * store, made only where missing. Returns whether anything was made.
 */
export async function ensureEmbeddedDefaults(ctx: Context): Promise<boolean> {
  const file = await readConfigFile(ctx.dir);
  const name = ctx.globals.profile ?? file?.active ?? 'default';
  let made = false;
  if (!file?.profiles[name]) {
    await mkdir(ctx.dir, { recursive: true, mode: 0o700 });
    await saveProfile(ctx, name, { mode: 'embedded' }, false);
    await ignoreFolderInGit(ctx.dir);
    made = true;
  }
  const config = await resolveConfig({ dir: ctx.dir, profile: name, env: ctx.env });
  if (config.mode !== 'embedded') return made;
  const key = await ensureKey(ctx, config.keyFile, false);
  if (key.status === 'created') {
    ctx.out.note(
      `Created the master key ${shown(config.keyFile)} (key id ${key.id}, mode 0600). Back it up: without it the stored tokens cannot be decrypted.`,
    );
    made = true;
  }
  return made;
}

async function initEmbedded(ctx: Context, options: InitOptions): Promise<void> {
  const name = ctx.globals.profile ?? 'default';
  if (options.baseUrl !== undefined) checkedUrl(options.baseUrl, '--base-url');
  const profile: ConfigProfile = { mode: 'embedded' };
  // Paths the user typed are relative to where they typed them; config paths are relative to the folder.
  if (options.store) profile.store = /^[a-z][a-z0-9+.-]*:\/\//i.test(options.store) ? options.store : resolve(options.store);
  else if (name !== 'default') profile.store = `${name}.db`;
  if (options.keyFile) profile.keyFile = resolve(options.keyFile);
  else if (name !== 'default') profile.keyFile = `${name}.key`;
  if (options.baseUrl) profile.baseUrl = options.baseUrl;

  await mkdir(ctx.dir, { recursive: true, mode: 0o700 });
  const configPath = await saveProfile(ctx, name, profile, options.force === true);
  await ignoreFolderInGit(ctx.dir);
  const { EVERYAUTH_SERVER_URL: _ignored, ...env } = ctx.env;
  const config = await resolveConfig({ dir: ctx.dir, profile: name, env });
  if (config.mode !== 'embedded') throw new Error('unreachable: the profile just written is embedded');

  const key = await ensureKey(ctx, config.keyFile, options.force === true);
  const store = await openStore(config.store); // creates and migrates
  await store.close();

  if (ctx.out.json) {
    return ctx.out.data({
      profile: name,
      mode: 'embedded',
      config: configPath,
      store: shown(config.store),
      keyFile: config.keyFile,
      key,
      baseUrl: config.baseUrl,
    });
  }
  ctx.out.line(`Wrote ${shown(configPath)}: profile "${name}" (active), redirect URLs under ${config.baseUrl}.`);
  ctx.out.line(`Store ${shown(config.store)} is ready.`);
  if (key.status === 'env') ctx.out.line(`Master key: ${MASTER_KEY_ENV} is set, so no key file was written (key id ${key.id}).`);
  else if (key.status === 'kept')
    ctx.out.line(`Master key ${shown(config.keyFile)} already exists (key id ${key.id}); kept it. Use --force to replace it.`);
  else {
    ctx.out.line(`Master key ${shown(config.keyFile)} created (key id ${key.id}, mode 0600).`);
    ctx.out.note('Back it up somewhere safe: without it the stored tokens and secrets cannot be decrypted.');
  }
  ctx.out.note(
    'Next: `everyauth provider ls --search <name>`, then `everyauth service set <id> --provider <provider> --client-id <id> --client-secret -`.',
  );
}

type KeyStatus = { status: 'created' | 'replaced' | 'kept' | 'env'; id: string };

async function ensureKey(ctx: Context, keyFile: string, force: boolean): Promise<KeyStatus> {
  const fromEnv = ctx.env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { status: 'env', id: parseKeyMaterial(fromEnv, MASTER_KEY_ENV).current };
  }
  const exists = await stat(keyFile).then(
    () => true,
    () => false,
  );
  if (exists && !force) return { status: 'kept', id: (await readKeyRing(keyFile)).current };
  const ring = createKeyRing();
  await writeKeyRing(keyFile, ring, { overwrite: force });
  if (exists) ctx.out.warn(`Replaced the master key ${shown(keyFile)}: values sealed under the old key can no longer be decrypted.`);
  return { status: exists ? 'replaced' : 'created', id: ring.current };
}

/** Adds or replaces one profile and makes it active; the file is 0600 because it may hold an API key. */
async function saveProfile(ctx: Context, name: string, profile: ConfigProfile, force: boolean): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name))
    throw new UsageError(`Profile name "${name}" must be 1–64 letters, digits, ".", "_" or "-".`, 'init');
  const path = join(ctx.dir, 'config.json');
  let file: ConfigFile | undefined;
  try {
    file = await readConfigFile(ctx.dir);
  } catch (error) {
    if (!(force && error instanceof ConfigurationError)) throw error;
  }
  const next: ConfigFile = { active: name, profiles: { ...(file?.profiles ?? {}), [name]: profile } };
  await mkdir(ctx.dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`, 0o600);
  return path;
}

/** The folder holds the master key and maybe an API key: keep it out of version control by default. */
async function ignoreFolderInGit(dir: string): Promise<void> {
  await writeFile(join(dir, '.gitignore'), '# Created by everyauth init: this folder holds secrets.\n*\n', { flag: 'wx' }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
}

function checkedUrl(value: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} must be an absolute URL such as https://everyauth.example.com; got "${value}".`, 'init');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new UsageError(`${flag} must be an http(s) URL; got "${value}".`, 'init');
  return value.replace(/\/+$/, '');
}
