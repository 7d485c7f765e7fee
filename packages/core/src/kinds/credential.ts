import { InvalidInput } from '../errors.js';
import type { TokenSet } from '../oauth/token-set.js';
import { signOAuth1 } from './oauth1-sign.js';

/** A bearer access token: the OAuth 2 kinds and the service-account kinds once exchanged. */
export interface TokenCredential {
  type: 'oauth2' | 'oauth2_client_credentials' | 'jwt';
  accessToken: string;
  /** The Authorization scheme when it is not RFC 6750's `Bearer` (Mailchimp: `OAuth`, Zoho: `Zoho-oauthtoken`). */
  scheme?: string;
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

/** The credential of an opened token set: its own for the placed and signed kinds, else its bearer token. */
export function credentialOf(tokens: Pick<TokenSet, 'credential' | 'kind' | 'accessToken' | 'scheme'>): Credential {
  // A non-Bearer scheme (Mailchimp's OAuth, Zoho's Zoho-oauthtoken) travels with the token it applies to.
  const scheme = tokens.scheme ? { scheme: tokens.scheme } : {};
  return tokens.credential ?? ({ type: tokens.kind ?? 'oauth2', accessToken: tokens.accessToken, ...scheme } as TokenCredential);
}

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
      return { url: url ?? '', headers: { authorization: `${credential.scheme ?? 'Bearer'} ${credential.accessToken}` } };
  }
}

/** The helpers every fresh identity carries, so application code never branches on the kind. */
export interface CredentialHelpers {
  /** The headers to add to a request with this method and URL (the URL is needed for OAuth 1 and query keys). */
  headers(method?: string, url?: string): Record<string, string>;
  /** A copy of the request with the credential applied (headers, and query parameters where the key goes there). */
  authorize(request: Request): Request;
}

/**
 * The helpers on a prototype, so the token read (a hot path) builds no closures per identity, and
 * JSON responses and logs of an identity carry its data, never the functions.
 */
export abstract class CredentialHolder implements CredentialHelpers {
  abstract readonly credential: Credential;

  headers(method = 'GET', url?: string): Record<string, string> {
    return applyCredential(this.credential, method, url).headers;
  }

  authorize(request: Request): Request {
    const signed = applyCredential(this.credential, request.method, request.url);
    const headers = new Headers(request.headers);
    for (const [name, value] of Object.entries(signed.headers)) headers.set(name, value);
    return new Request(signed.url, { method: request.method, headers, body: request.body, duplex: 'half' } as RequestInit);
  }
}

/** Adds `headers` and `authorize` to an identity that arrived as plain data (the server's JSON). */
export function withHelpers<T extends { credential: Credential }>(identity: T): T & CredentialHelpers {
  return Object.assign(Object.create(CredentialHolder.prototype) as CredentialHelpers, identity);
}
