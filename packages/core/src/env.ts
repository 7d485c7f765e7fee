import { z } from 'zod';
import { ConfigurationError } from './errors.js';

/** What the reference page says of one variable, and what its error message offers as a good value. */
export interface VariableDoc {
  description: string;
  /** A good value, shown in the error message of a bad one. */
  example: string;
  /** The value used when the variable is not set, in words when it depends on the program. */
  default?: string;
  /** What a good value is, completing "expected …" in the error message. */
  expected: string;
  /** Never echo the value (keys, passphrases, URLs that may carry a password). */
  secret?: boolean;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const FLAG_ON = ['1', 'true', 'yes', 'on'];
const FLAG_OFF = ['0', 'false', 'no', 'off'];

const text = z.string().trim().min(1);
/** An absolute http(s) URL: the shape of every URL setting, in the environment and config.json. */
export const httpUrl = text.refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol));
const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => FLAG_ON.includes(v) || FLAG_OFF.includes(v))
  .transform((v) => FLAG_ON.includes(v));
const wholeNumber = (min: number, max: number) => text.regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));
const origins = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .refine((list) => list.every((o) => URL.canParse(o) && /^https?:$/.test(new URL(o).protocol)));

const variable = <T extends z.ZodType>(schema: T, doc: VariableDoc) => schema.optional().meta({ ...doc });

/**
 * Every EVERYAUTH_* environment variable: its parser, description, default and an example. The one
 * place the environment is read; core, the server, the CLI and express take the parsed result.
 */
export const EnvSchema = z.object({
  EVERYAUTH_DIR: variable(text, {
    description: 'The folder holding config.json, the SQLite store and the key file (what `everyauth init` makes).',
    example: '/srv/app/.everyauth',
    default: '.everyauth in the working directory',
    expected: 'a folder path',
  }),
  EVERYAUTH_PROFILE: variable(text, {
    description: 'The profile of config.json to use instead of its active one.',
    example: 'staging',
    default: "config.json's active profile",
    expected: 'a profile name of config.json',
  }),
  EVERYAUTH_SERVER_URL: variable(httpUrl, {
    description: 'Use the EveryAuth server at this URL (with EVERYAUTH_API_KEY) instead of a local store.',
    example: 'https://everyauth.internal:4000',
    expected: 'an absolute http(s) URL',
    secret: true,
  }),
  EVERYAUTH_API_KEY: variable(text, {
    description: 'The API key for EVERYAUTH_SERVER_URL (`everyauth apikey create`).',
    example: 'ea_<id>_<secret>',
    expected: 'an API key',
    secret: true,
  }),
  EVERYAUTH_STORE: variable(text, {
    description: "The store: a SQLite file path or a postgres:// URL. Overrides the profile's store.",
    example: 'postgres://everyauth@db.internal:5432/everyauth',
    default: "the profile's store, else .everyauth/everyauth.db",
    expected: 'a SQLite file path or a postgres:// URL',
    secret: true,
  }),
  EVERYAUTH_BASE_URL: variable(httpUrl, {
    description: 'The public URL providers redirect back to (`${baseUrl}/${serviceId}/callback`).',
    example: 'https://app.example.com',
    default: "the profile's baseUrl; for the server http://<host>:<port>, else http://localhost:3000",
    expected: 'an absolute http(s) URL',
  }),
  EVERYAUTH_MASTER_KEY: variable(text, {
    description: 'The master key: a base64url 32-byte key or a JSON key ring. Wins over the key file.',
    example: '<43 base64url characters>',
    default: "the profile's key file, .everyauth/master.key",
    expected: 'a base64url 32-byte key or a JSON key ring',
    secret: true,
  }),
  EVERYAUTH_PORT: variable(wholeNumber(0, 65_535), {
    description: 'The port the server listens on; 0 picks a free one.',
    example: '4000',
    default: '4000',
    expected: 'a port number from 0 to 65535',
  }),
  EVERYAUTH_HOST: variable(text, {
    description: 'The address the server listens on.',
    example: '0.0.0.0',
    default: '127.0.0.1',
    expected: 'a host name or IP address',
  }),
  EVERYAUTH_LOG_LEVEL: variable(z.enum(LOG_LEVELS), {
    description: 'How much is logged.',
    example: 'debug',
    default: 'info for the server, warn for the CLI',
    expected: `one of ${LOG_LEVELS.join(', ')}`,
  }),
  EVERYAUTH_RATE_LIMIT: variable(wholeNumber(0, 1_000_000_000), {
    description: 'Requests per API key per minute the server accepts; 0 turns the limit off.',
    example: '600',
    default: '6000',
    expected: 'a whole number of requests per minute, 0 or more (0 turns the limit off)',
  }),
  EVERYAUTH_READ_DEADLINE_MS: variable(wholeNumber(100, 600_000), {
    description:
      'How long a token read waits for a refresh before it answers with the current token or provider_unavailable (docs/operations.md); the refresh goes on.',
    example: '5000',
    default: '8000',
    expected: 'a whole number of milliseconds from 100 to 600000',
  }),
  EVERYAUTH_TIMEOUT_MS: variable(wholeNumber(1_000, 600_000), {
    description: 'How long RemoteBroker waits for the server; the server answers token reads before it (less a second).',
    example: '15000',
    default: '30000',
    expected: 'a whole number of milliseconds from 1000 to 600000',
  }),
  EVERYAUTH_REQUEST_TIMEOUT_MS: variable(wholeNumber(1_000, 600_000), {
    description:
      'How long a client has to send the server its request headers, and then its body (a body streamed through /v1/proxy may take longer but may not pause this long); a slower one gets 408.',
    example: '5000',
    default: '10000',
    expected: 'a whole number of milliseconds from 1000 to 600000',
  }),
  EVERYAUTH_DEAD_AFTER_DAYS: variable(wholeNumber(1, 3650), {
    description: 'Days of failed refreshes after which the server marks an identity dead (it is never deleted unless the app asks).',
    example: '14',
    default: '7',
    expected: 'a whole number of days, 1 to 3650',
  }),
  EVERYAUTH_WEBHOOK_RETENTION_DAYS: variable(wholeNumber(1, 3650), {
    description: 'Days the server keeps delivered and failed webhook deliveries (for the log and replays).',
    example: '30',
    default: '14',
    expected: 'a whole number of days, 1 to 3650',
  }),
  EVERYAUTH_PROXY_CONNECT_TIMEOUT_MS: variable(wholeNumber(1, 600_000), {
    description: "How long the proxy (/v1/proxy, broker.fetch) waits to connect to a provider's API.",
    example: '5000',
    default: '10000',
    expected: 'a whole number of milliseconds from 1 to 600000',
  }),
  EVERYAUTH_PROXY_FIRST_BYTE_TIMEOUT_MS: variable(wholeNumber(1, 3_600_000), {
    description: "How long the proxy waits for the start of a provider API's answer once the request is sent.",
    example: '30000',
    default: '60000',
    expected: 'a whole number of milliseconds from 1 to 3600000',
  }),
  EVERYAUTH_PROXY_IDLE_TIMEOUT_MS: variable(wholeNumber(1, 3_600_000), {
    description: "The longest pause the proxy allows between two parts of a provider API's answer.",
    example: '30000',
    default: '60000',
    expected: 'a whole number of milliseconds from 1 to 3600000',
  }),
  EVERYAUTH_ALLOWED_ORIGINS: variable(origins, {
    description: "Origins an absolute finishedUrl may point at, besides the base URL's own; comma-separated.",
    example: 'https://app.example.com,https://admin.example.com',
    default: 'none',
    expected: 'comma-separated absolute http(s) origins',
  }),
  EVERYAUTH_SANDBOX: variable(flag, {
    description: "Run the server's built-in sandbox authorization server.",
    example: 'true',
    default: 'on for a SQLite store, off for PostgreSQL or NODE_ENV=production',
    expected: `one of ${[...FLAG_ON, ...FLAG_OFF].join(', ')}`,
  }),
  EVERYAUTH_BUNDLE_PASSPHRASE: variable(z.string().min(1), {
    description: 'The passphrase of `everyauth bundle export`/`import` when --passphrase-file is not given.',
    example: '<a long passphrase>',
    expected: 'a non-empty passphrase',
    secret: true,
  }),
  EVERYAUTH_DEBUG: variable(flag, {
    description: 'The CLI prints the stack of an error.',
    example: '1',
    default: 'off',
    expected: `one of ${[...FLAG_ON, ...FLAG_OFF].join(', ')}`,
  }),
});

/** The parsed environment: each variable typed (a number, a flag, a list), undefined when not set. */
export type Env = z.infer<typeof EnvSchema>;
export type EnvVariable = keyof Env;

/** Every variable with its documentation, in schema order: what an env reference page is generated from. */
export const configVariables: ({ name: EnvVariable } & VariableDoc)[] = Object.entries(EnvSchema.shape).map(([name, schema]) => ({
  name: name as EnvVariable,
  ...(schema.meta() as unknown as VariableDoc),
}));

/**
 * Reads and checks every EVERYAUTH_* variable of `env` at once (or only `names`). An empty value
 * counts as not set. Throws one ConfigurationError naming each bad variable, what is wrong and a
 * good value, so a program refuses to start rather than run with a setting it silently dropped.
 */
export function readEnv(env: NodeJS.ProcessEnv = process.env, names?: readonly EnvVariable[]): Env {
  const wanted = configVariables.filter((v) => !names || names.includes(v.name));
  const input: Record<string, string> = {};
  for (const { name } of wanted) {
    const value = env[name];
    if (value !== undefined && value !== '') input[name] = value;
  }
  const parsed = EnvSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const failed = new Set(parsed.error.issues.map((i) => i.path[0]));
  const bad = wanted.filter((v) => failed.has(v.name));
  const lines = bad.map(({ name, secret, expected, example }) => {
    const shown = secret ? name : `${name}=${JSON.stringify(input[name])}`;
    return `${shown} is not valid: expected ${expected}; for example ${name}=${example}.`;
  });
  throw new ConfigurationError(lines.join('\n'), { cause: { variables: bad.map((v) => v.name) } });
}
