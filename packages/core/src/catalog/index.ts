import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { InvalidInput } from '../errors.js';
import { ProviderSchema, type Provider } from './schema.js';
import { placeholders } from './kinds.js';

export { ProviderSchema };
export type { Provider, ProviderInput } from './schema.js';

/**
 * The directory holding the built-in provider files. `../../catalog/` from this module is
 * `packages/core/catalog/` both from `src/catalog/` and from `dist/catalog/`.
 */
export const BUILT_IN_CATALOG_DIR = new URL('../../catalog/', import.meta.url);

/** The URL fields of a provider that may hold `{variable}` placeholders. */
const URL_FIELDS = ['issuer', 'authorizationUrl', 'tokenUrl', 'refreshUrl', 'revocationUrl', 'registrationUrl', 'userinfoUrl'] as const;

/** `path: message` for each issue, one per line. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issuePath(issue.path)}: ${issue.message}`).join('\n');
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(root)' : path.map((p) => String(p)).join('.');
}

/**
 * Validates a provider definition (a catalog file, a custom provider from the API or the CLI).
 * `source` names where it came from, for the error message: a file name, `request body`, ….
 */
export function parseProvider(input: unknown, source: string): Provider {
  const result = ProviderSchema.safeParse(input);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const lines = formatIssues(result.error)
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
  throw new InvalidInput(`Invalid provider in ${source}:\n${lines}`, first ? issuePath(first.path) : undefined);
}

/**
 * Reads and validates every `*.json` file of a directory; each file's name (without `.json`)
 * must equal the provider's id. Not cached: see loadBuiltInCatalog.
 */
export function loadCatalogDirectory(dir: URL | string): Map<string, Provider> {
  const path = typeof dir === 'string' ? dir : fileURLToPath(dir);
  const files = readdirSync(path)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const catalog = new Map<string, Provider>();
  for (const file of files) {
    const source = `catalog file ${file}`;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(`${path.replace(/\/$/, '')}/${file}`, 'utf8'));
    } catch (err) {
      throw new InvalidInput(`Invalid provider in ${source}: not valid JSON (${(err as Error).message})`);
    }
    const provider = parseProvider(json, source);
    const expectedId = file.slice(0, -'.json'.length);
    if (provider.id !== expectedId) {
      throw new InvalidInput(`Invalid provider in ${source}:\n  id: "${provider.id}" must equal the file name "${expectedId}"`, 'id');
    }
    catalog.set(provider.id, provider);
  }
  return catalog;
}

let builtIn: Map<string, Provider> | undefined;

/** The providers shipped in `packages/core/catalog/`, validated once and cached. */
export function loadBuiltInCatalog(): Map<string, Provider> {
  builtIn ??= loadCatalogDirectory(BUILT_IN_CATALOG_DIR);
  return builtIn;
}

/** Characters that would let a variable value leave its place in the URL (another host, path, query, user info). */
const UNSAFE_CHARACTERS = /[/\\@?#:%\s]/;
/** What a value may hold where it becomes part of the host name. */
const HOST_VALUE = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;

function isUnsafeValue(value: string, inHost: boolean): boolean {
  if (inHost) return !HOST_VALUE.test(value);
  if (value === '.' || value === '..' || UNSAFE_CHARACTERS.test(value)) return true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Returns a copy of the provider with every `{name}` placeholder in its URLs replaced by the
 * URL-encoded value of `variables[name]`. Throws InvalidInput naming the variable when a value
 * is missing or could send the request elsewhere: in the host, only letters, digits, dashes and
 * dots are accepted; in the path, no `/`, `\`, `@`, `?`, `#`, `:`, `%`, whitespace or control
 * characters, and not `.` or `..`.
 */
export function resolveProviderUrls(provider: Provider, variables: Record<string, string>): Provider {
  const substitute = (url: string) => substituteUrl(provider, url, variables);
  const out: Provider = { ...provider };
  for (const field of URL_FIELDS) {
    const value = provider[field];
    if (value !== undefined) out[field] = substitute(value);
  }
  if (provider.profile?.url !== undefined) out.profile = { ...provider.profile, url: substitute(provider.profile.url) };
  // API URLs may also hold values typed into a form, which only resolveApiUrls has: those stay templated here.
  const fromVariables = (url: string) => placeholders(url).every((name) => name in provider.variables);
  out.api = { baseUrls: provider.api.baseUrls.map((url) => (fromVariables(url) ? substitute(url) : url)) };
  return out;
}

/**
 * The provider's API URLs (`api.baseUrls`, `test.url`, the GitHub App token URL) with their
 * placeholders filled from the service's variables and the values typed into the form, under the
 * same rules as resolveProviderUrls. Kept apart because the form's values exist only at connect time.
 */
export function resolveApiUrls(provider: Provider, values: Record<string, string>): Provider {
  const substitute = (url: string) => substituteUrl(provider, url, values);
  const out: Provider = { ...provider, api: { baseUrls: provider.api.baseUrls.map(substitute) } };
  if (provider.test) out.test = { ...provider.test, url: substitute(provider.test.url) };
  if (provider.jwt?.installationTokenUrl)
    out.jwt = { ...provider.jwt, installationTokenUrl: substitute(provider.jwt.installationTokenUrl) };
  return out;
}

function substituteUrl(provider: Provider, url: string, variables: Record<string, string>): string {
  const authorityEnd = url.indexOf('/', url.indexOf('://') + 3);
  const resolved = url.replace(/\{([^}]*)\}/g, (_match, name: string, offset: number) => {
    const value = Object.hasOwn(variables, name) ? variables[name] : undefined;
    if (value === undefined || value === '') {
      const description = provider.variables[name]?.description;
      throw new InvalidInput(
        `Provider "${provider.id}" needs a value for the variable "${name}"${description ? ` (${description})` : ''}.`,
        `variables.${name}`,
      );
    }
    const inHost = authorityEnd === -1 || offset < authorityEnd;
    if (typeof value !== 'string' || isUnsafeValue(value, inHost)) {
      throw new InvalidInput(
        inHost
          ? `The value of variable "${name}" of provider "${provider.id}" is not allowed: it is part of the host name, so only letters, digits, dashes and dots may be used.`
          : `The value of variable "${name}" of provider "${provider.id}" is not allowed: it must not contain / \\ @ ? # : % whitespace or control characters, nor be . or ..`,
        `variables.${name}`,
      );
    }
    return encodeURIComponent(value);
  });
  try {
    new URL(resolved);
  } catch {
    throw new InvalidInput(`Provider "${provider.id}": the URL ${url} is not valid with the variables given.`, 'variables');
  }
  return resolved;
}

/** The `{name}` placeholders used in a provider's URLs. */
export function providerPlaceholders(provider: Provider): string[] {
  const names = new Set<string>();
  for (const url of [...URL_FIELDS.map((f) => provider[f]), provider.profile?.url]) {
    for (const name of placeholders(url)) names.add(name);
  }
  // An API URL's placeholder may instead be a field the user types into the form.
  const fields = new Set(provider.fields.map((f) => f.name));
  for (const url of provider.api.baseUrls) {
    for (const name of placeholders(url)) if (!fields.has(name)) names.add(name);
  }
  return [...names];
}

/**
 * Providers matching `text` (case-insensitive) in id, name, scopes or notes, best first: exact id,
 * then id prefix, then id or name containing the text, then the other fields. Empty text: all, by id.
 */
export function searchProviders(catalog: Map<string, Provider> | Iterable<Provider>, text: string): Provider[] {
  const providers = [...(catalog instanceof Map ? catalog.values() : catalog)];
  const needle = text.trim().toLowerCase();
  const byId = (a: Provider, b: Provider) => a.id.localeCompare(b.id);
  if (!needle) return providers.sort(byId);
  const rank = (p: Provider): number => {
    const id = p.id.toLowerCase();
    const name = p.name.toLowerCase();
    if (id === needle || name === needle) return 0;
    if (id.startsWith(needle) || name.startsWith(needle)) return 1;
    if (id.includes(needle) || name.includes(needle)) return 2;
    const rest = [...p.scopes.default, ...p.scopes.examples, p.notes ?? '', p.docs].join('\n').toLowerCase();
    return rest.includes(needle) ? 3 : -1;
  };
  return providers
    .map((p) => ({ p, r: rank(p) }))
    .filter(({ r }) => r >= 0)
    .sort((a, b) => a.r - b.r || byId(a.p, b.p))
    .map(({ p }) => p);
}
