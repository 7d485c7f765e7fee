import { InvalidInput } from '../errors.js';
import { signOAuth1 } from './oauth1-sign.js';

/** A bearer access token: the OAuth 2 kinds and the service-account kinds once exchanged. */
export interface TokenCredential {
  type: 'oauth2' | 'oauth2_client_credentials' | 'jwt';
  accessToken: string;
}

/** A static credential, already placed: the headers and query parameters every request carries. */
export interface PlacedCredential {
  type: 'api_key' | 'basic';
  headers: Record<string, string>;
  query: Record<string, string>;
}

/** OAuth 1.0a token credentials; every request is signed for its method and URL (RFC 5849 §3). */
export interface OAuth1Credential {
  type: 'oauth1';
  signatureMethod: 'HMAC-SHA1' | 'RSA-SHA1';
  consumerKey: string;
  /** The consumer secret (HMAC-SHA1) or the PEM private key (RSA-SHA1). */
  consumerSecret: string;
  token: string;
  tokenSecret: string;
}

/** What an identity holds, whatever its kind. `type` says which. */
export type Credential = TokenCredential | PlacedCredential | OAuth1Credential;

/** What to send: the URL (query parameters added) and the headers to add. */
export interface SignedRequest {
  url: string;
  headers: Record<string, string>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Applies a credential to one request. A credential never goes over plain http except to loopback
 * (RFC 7617 §4: Basic sends the password in clear; the same holds for keys and bearer tokens).
 */
export function applyCredential(credential: Credential, method: string, url: string | undefined): SignedRequest {
  if (url !== undefined) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && LOOPBACK.has(parsed.hostname))) {
      throw new InvalidInput(`A credential is only sent over https (or http to loopback); ${parsed.origin} is neither.`, 'url');
    }
  }
  switch (credential.type) {
    case 'api_key':
    case 'basic': {
      if (url === undefined) {
        if (Object.keys(credential.query).length > 0) {
          throw new InvalidInput('This credential goes in the query string: pass the request URL.', 'url');
        }
        return { url: '', headers: { ...credential.headers } };
      }
      const target = new URL(url);
      for (const [name, value] of Object.entries(credential.query)) target.searchParams.set(name, value);
      return { url: target.href, headers: { ...credential.headers } };
    }
    case 'oauth1':
      if (url === undefined) throw new InvalidInput('An OAuth 1.0a signature covers the method and URL: pass the request URL.', 'url');
      return { url, headers: { authorization: signOAuth1(credential, method, url) } };
    default:
      return { url: url ?? '', headers: { authorization: `Bearer ${credential.accessToken}` } };
  }
}

/** The helpers every fresh identity carries, so application code never branches on the kind. */
export interface CredentialHelpers {
  /** The headers to add to a request with this method and URL (the URL is needed for OAuth 1 and query keys). */
  headers(method?: string, url?: string): Record<string, string>;
  /** A copy of the request with the credential applied (headers, and query parameters where the key goes there). */
  authorize(request: Request): Request;
}

/** Adds `headers` and `authorize` to an identity read from the store or from the server's JSON. */
export function withHelpers<T extends { credential: Credential }>(identity: T): T & CredentialHelpers {
  const { credential } = identity;
  const helpers: CredentialHelpers = {
    headers: (method = 'GET', url) => applyCredential(credential, method, url).headers,
    authorize(request) {
      const signed = applyCredential(credential, request.method, request.url);
      const headers = new Headers(request.headers);
      for (const [name, value] of Object.entries(signed.headers)) headers.set(name, value);
      return new Request(signed.url, { method: request.method, headers, body: request.body, duplex: 'half' } as RequestInit);
    },
  };
  // Not enumerable: JSON responses and logs of an identity carry the data, not the functions.
  return Object.defineProperties(identity, {
    headers: { value: helpers.headers, enumerable: false },
    authorize: { value: helpers.authorize, enumerable: false },
  }) as T & CredentialHelpers;
}
