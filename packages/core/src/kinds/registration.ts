import * as oauth from 'oauth4webapi';
import type { Provider } from '../catalog/schema.js';
import { InvalidInput, ProviderError, ProviderUnavailable } from '../errors.js';
import { classifyProviderFailure } from '../oauth/engine.js';

const isLoopback = (url: URL) => url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';

/**
 * The authorization server for a URL that is either an issuer or a protected resource (a remote
 * MCP server, say): RFC 9728 metadata at the resource's well-known URL names its authorization
 * servers; without it the URL is taken as the issuer.
 */
export async function issuerFor(url: string, timeoutMs: number): Promise<string> {
  let resource: URL;
  try {
    resource = new URL(url);
  } catch {
    throw new InvalidInput(`"${url}" is not an absolute URL.`, 'issuer');
  }
  const options = { signal: AbortSignal.timeout(timeoutMs), [oauth.allowInsecureRequests]: isLoopback(resource) };
  let response: Response;
  try {
    response = await oauth.resourceDiscoveryRequest(resource, options);
  } catch {
    return url; // no resource metadata reachable: plain issuer discovery says what is wrong
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    return url;
  }
  try {
    const metadata = await oauth.processResourceDiscoveryResponse(resource, response);
    const [issuer] = metadata.authorization_servers ?? [];
    if (!issuer) throw new Error('it names no authorization_servers');
    return issuer;
  } catch (err) {
    throw new ProviderError(
      resource.host,
      'invalid_metadata',
      `the protected-resource metadata of ${url} is not usable (RFC 9728): ${(err as Error).message}`,
    );
  }
}

/** A client registered on the fly (RFC 7591 §3): its id, and its secret when the server issued one. */
export interface RegisteredClient {
  clientId: string;
  clientSecret?: string;
}

/** Registers a confidential web client for the code flow with this redirect URI, through oauth4webapi. */
export async function registerClient(provider: Provider, redirectUri: string, timeoutMs: number): Promise<RegisteredClient> {
  if (!provider.registrationUrl) {
    throw new InvalidInput(
      `${provider.issuer ?? provider.id} does not offer dynamic client registration (no registration_endpoint, RFC 7591); register a client by hand and use \`service set\`.`,
      'issuer',
    );
  }
  const as: oauth.AuthorizationServer = {
    issuer: provider.issuer ?? provider.registrationUrl,
    registration_endpoint: provider.registrationUrl,
  };
  const endpoint = new URL(provider.registrationUrl);
  try {
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'EveryAuth',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: provider.clientAuth,
      },
      { signal: AbortSignal.timeout(timeoutMs), [oauth.allowInsecureRequests]: isLoopback(endpoint) },
    );
    const client = await oauth.processDynamicClientRegistrationResponse(response);
    return { clientId: client.client_id, clientSecret: typeof client.client_secret === 'string' ? client.client_secret : undefined };
  } catch (err) {
    const failure = classifyProviderFailure(err);
    if (failure.kind === 'retryable') throw new ProviderUnavailable(provider.id, failure.detail);
    throw new ProviderError(provider.id, failure.error, `client registration refused: ${failure.detail}`);
  }
}
