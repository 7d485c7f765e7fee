import { createHmac, createSign } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import type { OAuth1Credential } from './credential.js';

/**
 * The `Authorization: OAuth …` header for one request (RFC 5849 §3.5.1), signed with HMAC-SHA1
 * (§3.4.2) or RSA-SHA1 (§3.4.3). `oauth-1.0a` builds the signature base string; node:crypto signs.
 * Query parameters of the URL are part of the base string (§3.4.1.3.1).
 */
export function signOAuth1(
  credential: Pick<OAuth1Credential, 'signatureMethod' | 'consumerKey' | 'consumerSecret'> & { token?: string; tokenSecret?: string },
  method: string,
  url: string,
  extra: Record<string, string> = {},
): string {
  const oauth = new OAuth({
    consumer: { key: credential.consumerKey, secret: credential.signatureMethod === 'HMAC-SHA1' ? credential.consumerSecret : '' },
    signature_method: credential.signatureMethod,
    hash_function: (base, key) =>
      credential.signatureMethod === 'HMAC-SHA1'
        ? createHmac('sha1', key).update(base).digest('base64')
        : createSign('RSA-SHA1').update(base).sign(credential.consumerSecret, 'base64'),
  });
  const token = credential.token === undefined ? undefined : { key: credential.token, secret: credential.tokenSecret ?? '' };
  const data = oauth.authorize({ url, method: method.toUpperCase(), data: extra }, token);
  // Extra protocol parameters (oauth_callback, oauth_verifier) travel in the header too (§3.5.1).
  return oauth.toHeader({ ...data, ...extra } as OAuth.Authorization).Authorization;
}
