import type { Profile } from '../broker.js';
import type { Provider } from '../catalog/schema.js';
import { CredentialRefused, InvalidInput, ProviderUnavailable } from '../errors.js';
import { readPath } from '../oauth/token-set.js';
import { basicAuthorization } from './basic.js';
import { applyCredential, type PlacedCredential } from './credential.js';
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

/**
 * Sends the provider's declared test request with the credential and reads the account's profile
 * from the answer. `provider` has its API URLs resolved; the request may only go to a host of
 * `api.baseUrls` and is never redirected (a redirect could carry the key elsewhere). A non-2xx
 * answer throws CredentialRefused with the provider's message, secrets removed.
 */
export async function testCredential(
  provider: Provider,
  credential: PlacedCredential,
  fields: Record<string, string>,
  timeoutMs: number,
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
  let response: Response;
  try {
    response = await fetch(signed.url, {
      method: test.method,
      headers: { accept: 'application/json', ...signed.headers },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new ProviderUnavailable(
      provider.id,
      `the test request failed: ${(err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message}`,
    );
  }
  const text = await response.text().catch(() => '');
  const body = parse(text);
  if (response.status >= 500 || response.status === 429) {
    throw new ProviderUnavailable(provider.id, `the test request answered HTTP ${response.status}`);
  }
  if (response.status < 200 || response.status > 299) {
    const said = test.errorPath ? readPath(body, test.errorPath) : undefined;
    const message = typeof said === 'string' && said ? said : `the test request answered HTTP ${response.status}`;
    throw new CredentialRefused(provider.id, redact(provider, fields, message).slice(0, 500), response.status);
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
