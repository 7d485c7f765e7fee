import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { InvalidInput } from '../errors.js';
import { namesAddress } from '../proxy/target.js';
import type { Category } from './categories.js';
import type { Kind } from './kinds.js';
import { ENDPOINT_FIELDS, ProviderSchema, type EndpointField, type Provider } from './schema.js';
import { placeholders, splitPlaceholders } from './kinds.js';

export { ProviderSchema };
export type { AuthFailure, Provider, ProviderInput } from './schema.js';

/** A built-in catalog entry: a provider, or another name for one (`aliasOf` names the provider). */
export type CatalogEntry = Provider & { aliasOf?: string };

/**
 * The directory holding the built-in provider files. `../../catalog/` from this module is
 * `packages/core/catalog/` both from `src/catalog/` and from `dist/catalog/`.
 */
export const BUILT_IN_CATALOG_DIR = new URL('../../catalog/', import.meta.url);

/** The endpoint URLs of a provider, each overridable by a service; `profileUrl` overrides `profile.url`, handled apart. */
const URL_FIELDS = ENDPOINT_FIELDS.filter((f): f is Exclude<EndpointField, 'profileUrl'> => f !== 'profileUrl');

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

/**
 * Adds the aliases of `dir/aliases/*.json` (files of the form `{ "aliases": { "sfdc": "salesforce" } }`)
 * to a catalog: each alias is the provider it names under another id, with `aliasOf` set, so a service
 * id another product used (Fusebit EveryAuth's `sfdc`) resolves to the same endpoints.
 */
export function addCatalogAliases(catalog: Map<string, CatalogEntry>, dir: URL | string): Map<string, CatalogEntry> {
  const path = `${(typeof dir === 'string' ? dir : fileURLToPath(dir)).replace(/\/$/, '')}/aliases`;
  for (const file of readdirSync(path).filter((f) => f.endsWith('.json'))) {
    const source = `catalog alias file aliases/${file}`;
    const { aliases } = JSON.parse(readFileSync(`${path}/${file}`, 'utf8')) as { aliases: Record<string, string> };
    for (const [alias, target] of Object.entries(aliases)) {
      const provider = catalog.get(target);
      if (!provider || provider.aliasOf) throw new InvalidInput(`Invalid alias in ${source}: "${alias}" names no provider ("${target}").`);
      if (catalog.has(alias)) throw new InvalidInput(`Invalid alias in ${source}: "${alias}" is already a provider id.`);
      catalog.set(alias, { ...provider, id: alias, aliasOf: target });
    }
  }
  return catalog;
}

let builtIn: Map<string, CatalogEntry> | undefined;

/** The providers shipped in `packages/core/catalog/` and their aliases, validated once and cached. */
export function loadBuiltInCatalog(): Map<string, CatalogEntry> {
  builtIn ??= addCatalogAliases(loadCatalogDirectory(BUILT_IN_CATALOG_DIR), BUILT_IN_CATALOG_DIR);
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

const isLoopback = (host: string) => host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);

/**
 * Checks a URL a service supplies (an endpoint override, or the value of an origin variable such
 * as `{baseUrl}`): https, or plain http on a loopback host for local stand-ins; no user info, no
 * fragment (RFC 6749 §3.1, §3.2), and, for an origin, no query. Returns it without a trailing slash.
 */
export function checkEndpointUrl(value: unknown, what: string, field: string, options: { origin?: boolean } = {}): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  const problem = !url
    ? 'is not an absolute URL'
    : url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))
      ? 'must use https (plain http only on localhost or 127.0.0.1)'
      : url.username || url.password
        ? 'must not hold a user name or password'
        : url.hash || value!.toString().includes('#')
          ? 'must not have a fragment (#…)'
          : options.origin && url.search
            ? 'must not have a query (?…)'
            : undefined;
  if (problem) throw new InvalidInput(`${what}: ${JSON.stringify(value)} ${problem}.`, field);
  return (value as string).replace(/\/+$/, '');
}

/**
 * Returns a copy of the provider ready for one service: every `{name}` placeholder in its URLs
 * replaced by `variables[name]` (or the variable's default), then any endpoint the service
 * overrides (`variables.tokenUrl`, …, see ENDPOINT_FIELDS) replaced by its value. Throws
 * InvalidInput naming the variable when a value is missing, unknown, or could send the request
 * elsewhere: in the host, only letters, digits, dashes and dots; in the path, no `/`, `\`, `@`, `?`,
 * `#`, `:`, `%`, whitespace or control characters, and not `.` or `..`; as the whole origin
 * (`{baseUrl}/…`) and as an override, an https URL (or http on a loopback host) without user info.
 */
export function resolveProviderUrls(provider: Provider, variables: Record<string, string>): Provider {
  for (const name of Object.keys(variables)) {
    if (!(name in provider.variables) && !(ENDPOINT_FIELDS as readonly string[]).includes(name)) {
      const known = [...Object.keys(provider.variables), ...ENDPOINT_FIELDS].join(', ');
      throw new InvalidInput(`Provider "${provider.id}" has no variable "${name}"; it takes: ${known}.`, `variables.${name}`);
    }
  }
  const substitute = (url: string) => substituteUrl(provider, url, variables);
  const override = (field: EndpointField): string | undefined => {
    const value = variables[field];
    if (value === undefined) return undefined;
    return checkEndpointUrl(value, `The ${field} override of provider "${provider.id}"`, `variables.${field}`);
  };
  const out: Provider = { ...provider };
  for (const field of URL_FIELDS) {
    const value = override(field) ?? (provider[field] === undefined ? undefined : substitute(provider[field]));
    if (value !== undefined) out[field] = value;
  }
  if (provider.profile?.url !== undefined || variables.profileUrl !== undefined) {
    if (!provider.profile)
      throw new InvalidInput(`Provider "${provider.id}" reads no profile, so profileUrl cannot be overridden.`, 'variables.profileUrl');
    out.profile = { ...provider.profile, url: override('profileUrl') ?? substitute(provider.profile.url!) };
  }
  // API URLs may also hold values typed into a form, which only resolveApiUrls has: those stay templated here.
  const { fields } = splitPlaceholders(provider);
  const fromVariables = (url: string) => !placeholders(url).some((name) => fields.has(name));
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

/**
 * One URL with its placeholders filled: a value given (or the variable's default), checked for
 * where it lands: the whole origin (`{baseUrl}/…`), the host, or the path.
 */
function substituteUrl(provider: Provider, url: string, variables: Record<string, string>): string {
  const authorityEnd = url.indexOf('/', url.indexOf('://') + 3);
  const typedInHost: string[] = [];
  const resolved = url.replace(/\{([^}]*)\}/g, (_match, name: string, offset: number) => {
    const given = Object.hasOwn(variables, name) ? variables[name] : undefined;
    const value = given === undefined || given === '' ? provider.variables[name]?.default : given;
    if (value === undefined || value === '') {
      const description = provider.variables[name]?.description;
      throw new InvalidInput(
        `Provider "${provider.id}" needs a value for the variable "${name}"${description ? ` (${description})` : ''}.`,
        `variables.${name}`,
      );
    }
    if (offset === 0) {
      return checkEndpointUrl(value, `The value of variable "${name}" of provider "${provider.id}"`, `variables.${name}`, { origin: true });
    }
    const inHost = authorityEnd === -1 || offset < authorityEnd;
    // A value typed into the form is named as the form names it, so the form can mark that field.
    const typed = provider.fields.find((f) => f.name === name);
    if (inHost && typed) typedInHost.push(name);
    if (typeof value !== 'string' || isUnsafeValue(value, inHost)) {
      const what = typed ? `${typed.label} (${name})` : `The value of variable "${name}" of provider "${provider.id}"`;
      throw new InvalidInput(
        inHost
          ? `${what} is not allowed: it is part of the host name, so only letters, digits, dashes and dots may be used.`
          : `${what} is not allowed: it must not contain / \\ @ ? # : % whitespace or control characters, nor be . or ..`,
        typed ? `fields.${name}` : `variables.${name}`,
      );
    }
    return encodeURIComponent(value);
  });
  let parsed: URL;
  try {
    parsed = new URL(resolved);
  } catch {
    throw new InvalidInput(`Provider "${provider.id}": the URL ${url} is not valid with the variables given.`, 'variables');
  }
  if (typedInHost.length > 0 && namesAddress(parsed)) refuseTypedAddress(provider, typedInHost[0]!);
  return resolved;
}

/**
 * A host typed into the form must be a name: an IP address is never looked up, so the check of
 * where a name resolves (proxy/address.ts: never a cloud's metadata address, nor a private network
 * for a user's value) could not apply, and the test request would carry the credential there.
 */
function refuseTypedAddress(provider: Provider, name: string): never {
  const field = provider.fields.find((f) => f.name === name)!;
  throw new InvalidInput(
    `${field.label} (${name}) must be a host name, not an IP address: type the name of the host${field.help ? `, ${field.help}` : ''}.`,
    `fields.${name}`,
  );
}

/** The `{name}` placeholders of a provider's URLs that are the service's variables (see splitPlaceholders). */
export function providerPlaceholders(provider: Provider): string[] {
  return [...splitPlaceholders(provider).variables];
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

/** What `listProviders` may filter on; every given filter must hold. */
export interface ProviderFilter {
  /** Text matched as {@link searchProviders} does: id and name first, then scopes, notes and docs. */
  search?: string;
  kind?: Kind;
  category?: Category;
}

/**
 * The providers that pass `filter`: of the given kind and category, then searched and ranked by
 * {@link searchProviders}. The one filter behind `provider ls`, GET /v1/providers and the console.
 */
export function filterProviders(providers: Iterable<Provider>, filter: ProviderFilter = {}): Provider[] {
  const kept = [...providers].filter(
    (p) => (!filter.kind || p.kind === filter.kind) && (!filter.category || p.category === filter.category),
  );
  return searchProviders(kept, filter.search ?? '');
}
