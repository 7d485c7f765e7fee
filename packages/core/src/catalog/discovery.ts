import * as oauth from 'oauth4webapi';
import { InvalidInput, ProviderError, ProviderUnavailable } from '../errors.js';
import { parseProvider } from './index.js';
import type { Provider, ProviderInput } from './schema.js';

export interface DiscoverOptions {
  /** Display name; default the issuer's host. */
  name?: string;
  /** Accept an `http:` issuer (and `http:` endpoints) that is not on a loopback address. For tests and private networks only. */
  allowInsecure?: boolean;
  /** Time allowed for each metadata request, default 10 s. */
  timeoutMs?: number;
}

const OIDC_DEFAULT_SCOPES = ['openid', 'email', 'profile'];

/** Loopback hosts, where plain http is allowed without `allowInsecure` (RFC 8252 §8.3 style). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

/**
 * A provider built from an issuer's metadata: OpenID Connect Discovery
 * (`{issuer}/.well-known/openid-configuration`) first, then RFC 8414
 * (`/.well-known/oauth-authorization-server` inserted before the issuer's path).
 *
 * Errors: InvalidInput for a bad id or issuer (or an http issuer that is neither loopback nor
 * allowed), ProviderUnavailable when the issuer cannot be reached (or answers 5xx),
 * ProviderError when it answers without usable metadata.
 */
export async function discoverProvider(id: string, issuer: string, options: DiscoverOptions = {}): Promise<Provider> {
  if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) {
    throw new InvalidInput(`The provider id "${String(id)}" is not valid: use lowercase letters, digits and dashes.`, 'id');
  }
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new InvalidInput(`The issuer "${issuer}" is not an absolute URL.`, 'issuer');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidInput(`The issuer "${issuer}" must be an https URL.`, 'issuer');
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new InvalidInput(`The issuer "${issuer}" must not have a query, fragment or user info (RFC 8414 §2).`, 'issuer');
  }
  const insecureOk = options.allowInsecure === true;
  if (url.protocol === 'http:' && !insecureOk && !isLoopbackHost(url.hostname)) {
    throw new InvalidInput(`The issuer "${issuer}" uses plain http; only loopback issuers may, unless allowInsecure is set.`, 'issuer');
  }

  const requestOptions = (algorithm: 'oidc' | 'oauth2'): oauth.DiscoveryRequestOptions => ({
    algorithm,
    [oauth.allowInsecureRequests]: url.protocol === 'http:',
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });

  const tried: string[] = [];
  let metadata: oauth.AuthorizationServer | undefined;
  let oidc = false;
  for (const algorithm of ['oidc', 'oauth2'] as const) {
    const where = wellKnownUrl(url, algorithm);
    let response: Response;
    try {
      response = await oauth.discoveryRequest(url, requestOptions(algorithm));
    } catch (err) {
      throw unreachable(id, where, err);
    }
    if (response.status >= 500) {
      throw new ProviderUnavailable(id, `${where} answered HTTP ${response.status}`);
    }
    if (response.status !== 200) {
      tried.push(`${where} answered HTTP ${response.status}`);
      await response.body?.cancel();
      continue;
    }
    try {
      metadata = await oauth.processDiscoveryResponse(url, response);
    } catch (err) {
      throw new ProviderError(id, 'invalid_metadata', `${where}: ${describe(err)}`, { cause: err });
    }
    oidc = algorithm === 'oidc';
    break;
  }
  if (!metadata) {
    throw new ProviderError(id, 'no_metadata', `no authorization server metadata at ${issuer}: ${tried.join('; ')}`);
  }
  return parseProvider(toProviderInput(id, issuer, metadata, oidc, options, insecureOk), `the metadata of ${issuer}`);
}

function wellKnownUrl(issuer: URL, algorithm: 'oidc' | 'oauth2'): string {
  const u = new URL(issuer.href);
  if (algorithm === 'oidc') {
    u.pathname = `${u.pathname.replace(/\/$/, '')}/.well-known/openid-configuration`;
  } else {
    u.pathname = `/.well-known/oauth-authorization-server${u.pathname === '/' ? '' : u.pathname}`;
  }
  return u.href;
}

function unreachable(id: string, where: string, err: unknown): Error {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ENOTFOUND') {
    return new InvalidInput(`The issuer host in ${where} does not resolve (${cause.code}); check the issuer URL.`, 'issuer');
  }
  const name = (err as Error).name;
  const detail = name === 'TimeoutError' || name === 'AbortError' ? 'timed out' : (cause?.code ?? cause?.message ?? (err as Error).message);
  return new ProviderUnavailable(id, `could not reach ${where}: ${detail}`, { cause: err });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toProviderInput(
  id: string,
  issuer: string,
  as: oauth.AuthorizationServer,
  oidc: boolean,
  options: DiscoverOptions,
  insecureOk: boolean,
): ProviderInput {
  const endpoint = (field: keyof oauth.AuthorizationServer, required: boolean): string | undefined => {
    const value = as[field];
    if (value === undefined || value === null) {
      if (required) throw new ProviderError(id, 'invalid_metadata', `the metadata of ${issuer} has no ${String(field)}`);
      return undefined;
    }
    let u: URL;
    try {
      if (typeof value !== 'string' || /[\s{}]/.test(value)) throw new Error();
      u = new URL(value);
    } catch {
      throw new ProviderError(id, 'invalid_metadata', `${String(field)} in the metadata of ${issuer} is not a usable URL`);
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && (insecureOk || isLoopbackHost(u.hostname)))) {
      throw new ProviderError(id, 'invalid_metadata', `${String(field)} in the metadata of ${issuer} is not an https URL (${value})`);
    }
    return value;
  };

  const grants = as.grant_types_supported;
  if (grants && !grants.includes('authorization_code')) {
    throw new ProviderError(id, 'unsupported_grant', `${issuer} does not support the authorization_code grant`);
  }
  if (as.response_types_supported && !as.response_types_supported.includes('code')) {
    throw new ProviderError(id, 'unsupported_grant', `${issuer} does not support response_type=code`);
  }

  // RFC 8414 §2: when omitted, client_secret_basic is the default.
  const methods = as.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  let clientAuth: 'client_secret_basic' | 'client_secret_post';
  if (methods.includes('client_secret_basic')) clientAuth = 'client_secret_basic';
  else if (methods.includes('client_secret_post')) clientAuth = 'client_secret_post';
  else {
    throw new ProviderError(
      id,
      'unsupported_client_auth',
      `${issuer} accepts neither client_secret_basic nor client_secret_post (supports: ${methods.join(', ') || 'none'})`,
    );
  }

  const supported = as.scopes_supported;
  const defaultScopes = oidc ? OIDC_DEFAULT_SCOPES.filter((s) => s === 'openid' || !supported || supported.includes(s)) : [];
  const userinfoUrl = endpoint('userinfo_endpoint', false);
  const docs =
    typeof as.service_documentation === 'string' && /^https?:\/\//.test(as.service_documentation) ? as.service_documentation : issuer;
  const source = oidc ? 'OpenID Connect discovery' : 'RFC 8414 metadata';

  return {
    id,
    name: options.name ?? new URL(issuer).host,
    docs,
    issuer: as.issuer,
    authorizationUrl: endpoint('authorization_endpoint', true)!,
    tokenUrl: endpoint('token_endpoint', true)!,
    revocationUrl: endpoint('revocation_endpoint', false),
    registrationUrl: endpoint('registration_endpoint', false),
    userinfoUrl,
    authorizationResponseIss: as.authorization_response_iss_parameter_supported === true,
    scopes: {
      default: defaultScopes,
      separator: ' ',
      examples: Array.isArray(supported) ? supported.filter((s) => typeof s === 'string').slice(0, 30) : [],
    },
    pkce: Array.isArray(as.code_challenge_methods_supported) && as.code_challenge_methods_supported.includes('S256'),
    clientAuth,
    token: { refreshToken: !grants || grants.includes('refresh_token') },
    // Scope claims (name, email) of a code flow often come only from userinfo (OIDC Core §5.4),
    // so userinfo wins when there is one; otherwise the ID token.
    profile: userinfoUrl
      ? { source: 'userinfo', id: 'sub', name: 'name', email: 'email' }
      : oidc
        ? { source: 'id_token', id: 'sub', name: 'name', email: 'email' }
        : undefined,
    notes: `Discovered from ${source} of ${issuer}.`,
  };
}
