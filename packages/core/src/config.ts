import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { Broker } from './broker.js';
import { httpUrl, readEnv, type VariableDoc } from './env.js';
import { ConfigurationError } from './errors.js';
import { LocalBroker, type LocalBrokerOptions } from './local-broker.js';
import { openStore } from './store/index.js';
import { loadVault } from './vault.js';

/** The folder `everyauth init` makes, relative to the working directory. */
export const DEFAULT_DIR = '.everyauth';

const fileField = <T extends z.ZodType>(schema: T, doc: Omit<VariableDoc, 'secret'>) => schema.meta({ ...doc });

const EmbeddedProfile = z.object({
  mode: fileField(z.literal('embedded'), {
    description: 'embedded: the broker runs in this process on a local store; remote: it talks to an EveryAuth server.',
    example: '"embedded"',
    expected: '"embedded" or "remote"',
  }),
  store: fileField(z.string().min(1), {
    description: "The store: a SQLite path (relative to the config folder's parent) or a postgres:// URL.",
    example: '".everyauth/everyauth.db"',
    default: '.everyauth/everyauth.db',
    expected: 'a SQLite file path or a postgres:// URL',
  }).optional(),
  keyFile: fileField(z.string().min(1), {
    description: 'The key ring file holding the master key, relative like `store`.',
    example: '".everyauth/master.key"',
    default: '.everyauth/master.key',
    expected: 'a file path',
  }).optional(),
  baseUrl: fileField(httpUrl, {
    description: "The app's public URL, which providers redirect back to.",
    example: '"https://app.example.com"',
    default: 'http://localhost:3000',
    expected: 'an absolute http(s) URL',
  }).optional(),
});
const RemoteProfile = z.object({
  mode: z.literal('remote'),
  server: fileField(httpUrl, {
    description: "A remote profile: the EveryAuth server's URL.",
    example: '"https://everyauth.internal:4000"',
    expected: 'an absolute http(s) URL',
  }),
  apiKey: fileField(z.string().min(1), {
    description: 'A remote profile: the API key for the server.',
    example: '"ea_<id>_<secret>"',
    expected: 'an API key',
  }),
});
export const Profile = z.discriminatedUnion('mode', [EmbeddedProfile, RemoteProfile]);
export type Profile = z.infer<typeof Profile>;

export const ConfigFile = z.object({
  active: fileField(z.string().min(1), {
    description: 'The profile used when none is named (--profile, EVERYAUTH_PROFILE).',
    example: '"default"',
    default: 'default',
    expected: 'a profile name',
  }).default('default'),
  profiles: z.record(z.string(), Profile).default({}),
});
export type ConfigFile = z.infer<typeof ConfigFile>;

/** Every config.json field with its documentation (`<name>` is a profile's name), for a reference page. */
export const configFileFields: ({ path: string } & Omit<VariableDoc, 'secret'>)[] = (
  [
    ['active', ConfigFile.shape.active.unwrap()],
    ...Object.entries({ ...RemoteProfile.shape, ...EmbeddedProfile.shape }).map(([name, schema]) => [
      `profiles.<name>.${name}`,
      schema instanceof z.ZodOptional ? schema.unwrap() : schema,
    ]),
  ] as [string, z.ZodType][]
).map(([path, schema]) => ({ path, ...(schema.meta() as unknown as Omit<VariableDoc, 'secret'>) }));

export interface ResolvedEmbedded {
  mode: 'embedded';
  store: string;
  keyFile: string;
  baseUrl: string;
}
export interface ResolvedRemote {
  mode: 'remote';
  server: string;
  apiKey: string;
}
export type ResolvedConfig = ResolvedEmbedded | ResolvedRemote;

export interface ResolveOptions {
  /** The folder holding config.json, the store and the key; default `.everyauth` in the working directory. */
  dir?: string;
  profile?: string;
  env?: NodeJS.ProcessEnv;
}

export async function readConfigFile(dir: string): Promise<ConfigFile | undefined> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which may hold a remote profile's API key.
    throw new ConfigurationError(`${path} is not valid JSON; fix it or run \`everyauth init --force\`.`);
  }
  const parsed = ConfigFile.safeParse(json);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const where = issue.path.join('.') || '(the top level)';
    const doc = configFileFields.find((f) => f.path.split('.').at(-1) === issue.path.at(-1));
    return doc ? `${where}: expected ${doc.expected}; for example ${doc.example}` : `${where}: ${issue.message}`;
  });
  throw new ConfigurationError(
    `${path} is not a valid EveryAuth config: ${problems.join('; ')}. Fix it or run \`everyauth init --force\`.`,
    { cause: { paths: parsed.error.issues.map((i) => i.path.join('.')) } },
  );
}

/**
 * Where EveryAuth's settings come from, first match wins: environment variables
 * (EVERYAUTH_SERVER_URL + EVERYAUTH_API_KEY for a server; EVERYAUTH_STORE, EVERYAUTH_BASE_URL),
 * then the active profile of `.everyauth/config.json`, then the embedded defaults.
 */
export async function resolveConfig(options: ResolveOptions = {}): Promise<ResolvedConfig> {
  const env = readEnv(options.env ?? process.env);
  const dir = resolve(options.dir ?? env.EVERYAUTH_DIR ?? DEFAULT_DIR);
  if (env.EVERYAUTH_SERVER_URL) {
    if (!env.EVERYAUTH_API_KEY)
      throw new ConfigurationError('EVERYAUTH_SERVER_URL is set but EVERYAUTH_API_KEY is not; set both to use a server.');
    return { mode: 'remote', server: env.EVERYAUTH_SERVER_URL, apiKey: env.EVERYAUTH_API_KEY };
  }
  const file = await readConfigFile(dir);
  const name = options.profile ?? env.EVERYAUTH_PROFILE ?? file?.active ?? 'default';
  const profile = file?.profiles[name];
  if (options.profile && !profile) {
    throw new ConfigurationError(
      `No profile "${name}" in ${join(dir, 'config.json')}; create it with \`everyauth init --profile ${name}\`.`,
    );
  }
  if (profile?.mode === 'remote') return profile;
  const base = resolve(dir, '..');
  return {
    mode: 'embedded',
    store: env.EVERYAUTH_STORE ?? absolute(base, profile?.store ?? join(DEFAULT_DIR, 'everyauth.db'), dir),
    keyFile: absolute(base, profile?.keyFile ?? join(DEFAULT_DIR, 'master.key'), dir),
    baseUrl: env.EVERYAUTH_BASE_URL ?? profile?.baseUrl ?? 'http://localhost:3000',
  };
}

function absolute(base: string, path: string, dir: string): string {
  if (/^[a-z]+:\/\//i.test(path)) return path;
  // Defaults are written relative to the project, i.e. the config folder's parent.
  return resolve(path.startsWith(DEFAULT_DIR) ? base : dir, path);
}

/** Opens the broker a resolved config names: a LocalBroker over its store, or a RemoteBroker. */
export async function openBroker(
  config: ResolvedConfig,
  options: Omit<Partial<LocalBrokerOptions>, 'store' | 'vault'> & { env?: NodeJS.ProcessEnv } = {},
): Promise<Broker> {
  if (config.mode === 'remote') {
    const { RemoteBroker } = await import('./remote-broker.js');
    return new RemoteBroker({ server: config.server, apiKey: config.apiKey });
  }
  const vault = await loadVault({ env: options.env ?? process.env, keyFile: config.keyFile });
  const store = await openStore(config.store);
  return new LocalBroker({ ...options, store, vault, baseUrl: options.baseUrl ?? config.baseUrl });
}
