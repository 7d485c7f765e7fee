import type { Dispatcher } from 'undici';
import type { Profile } from '../broker.js';
import { variablesChooseHosts } from '../catalog/kinds.js';
import type { Provider } from '../catalog/schema.js';
import { CredentialRefused, InvalidInput, ProviderUnavailable, ProxyRefused } from '../errors.js';
import type { ApiAgents } from '../proxy/agents.js';
import { readPath } from '../oauth/token-set.js';
import { basicAuthorization } from './basic.js';
import { applyCredential, type OAuth1Credential, type PlacedCredential } from './credential.js';
import { redact } from './fields.js';

const fill = (template: string, fields: Record<string, string>) =>
  template.replace(/\{([^}]*)\}/g, (_m, name: string) => fields[name] ?? '');

/**
 * The `api_key` and `basic` kinds: where the typed-in values go on every request, from the
 * provider's `apply` templates. Header values cannot break the header (no CR/LF reaches here:
 * readFields refuses control characters).
 */
export function placeCredential(provider: Provider, fields: Record<string, string>): PlacedCredential {
  const apply = provider.apply!;
  const headers: Record<string, string> = {};
  for (const [name, template] of Object.entries(apply.headers)) headers[name.toLowerCase()] = fill(template, fields);
  const query: Record<string, string> = {};
  for (const [name, template] of Object.entries(apply.query)) query[name] = fill(template, fields);
  if (apply.basic) headers.authorization = basicAuthorization(fill(apply.basic.username, fields), fill(apply.basic.password, fields));
  return { type: provider.kind === 'basic' ? 'basic' : 'api_key', headers, query };
}

/** How the test request is sent: through which connection pool, and how long it may take. */
export interface TestRequestOptions {
  /** One of the proxy's pools (`testAgent`): it checks every address a host name resolves to. */
  agent: Dispatcher;
  timeoutMs: number;
}

/**
 * The pool for a provider's test request: the service's rule (private networks allowed) only when
 * the service's own variables name the test URL's host (a self-hosted install); the strict rule
 * when the catalog does, or a value typed into the form (`typed`, which wins over a variable of
 * the same name), so a user cannot aim the credential at the operator's network.
 */
export function testAgent(
  agents: ApiAgents,
  provider: Provider,
  variables: Record<string, string>,
  typed: Record<string, string>,
): Dispatcher {
  const serviceOwn = Object.fromEntries(Object.entries(variables).filter(([name]) => !Object.hasOwn(typed, name)));
  return agents.for(variablesChooseHosts([provider.test!.url], serviceOwn));
}

/**
 * Sends the provider's declared test request with the credential and reads the account's profile
 * from the answer. `provider` has its API URLs resolved; the request may only go to a host of
 * `api.baseUrls`, to an address the agent allows, and is never redirected (a redirect could carry
 * the key elsewhere). A non-2xx answer throws CredentialRefused with the provider's message,
 * secrets removed.
 */
export async function testCredential(
  provider: Provider,
  credential: PlacedCredential | OAuth1Credential,
  fields: Record<string, string>,
  { agent, timeoutMs }: TestRequestOptions,
): Promise<Profile> {
  const test = provider.test!;
  const target = new URL(test.url);
  if (!provider.api.baseUrls.some((base) => new URL(base).host === target.host)) {
    throw new InvalidInput(
      `The test request of provider "${provider.id}" must go to one of its API hosts, not ${target.host}.`,
      'test.url',
    );
  }
  const signed = applyCredential(credential, test.method, target.href);
  const url = new URL(signed.url);
  let status: number;
  let text: string;
  try {
    // undici's request() through the proxy's agent: it follows no redirect, and its lookup refuses
    // an address the host may not have (address.ts) before any byte of the credential is sent.
    const response = await agent.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: test.method,
      // fetch() named itself; some APIs (GitHub's) refuse a request that names no user agent.
      headers: { accept: 'application/json', 'user-agent': 'EveryAuth', ...signed.headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.statusCode;
    text = await response.body.text().catch(() => '');
  } catch (err) {
    if (err instanceof ProxyRefused) throw err;
    throw new ProviderUnavailable(
      provider.id,
      `the test request failed: ${(err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message}`,
    );
  }
  const body = parse(text);
  if (status >= 500 || status === 429) {
    throw new ProviderUnavailable(provider.id, `the test request answered HTTP ${status}`);
  }
  if (status < 200 || status > 299) {
    const said = test.errorPath ? readPath(body, test.errorPath) : undefined;
    const message = typeof said === 'string' && said ? said : `the test request answered HTTP ${status}`;
    throw new CredentialRefused(provider.id, redact(provider, fields, message).slice(0, 500), status);
  }
  const profile: Profile = {};
  for (const key of ['id', 'name', 'email'] as const) {
    const path = test.profile?.[key];
    const value = path ? readPath(body, path) : undefined;
    if (typeof value === 'string' || typeof value === 'number') profile[key] = String(value);
  }
  return profile;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
