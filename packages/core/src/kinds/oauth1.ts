import type { Profile } from '../broker.js';
import { resolveApiUrls } from '../catalog/index.js';
import type { Provider } from '../catalog/schema.js';
import { AuthorizationFailed, InvalidInput } from '../errors.js';
import { readProfile, type ClientContext } from '../oauth/engine.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { ApiAgents } from '../proxy/agents.js';
import { testAgent, testCredential } from './api-key.js';
import type { OAuth1Credential } from './credential.js';
import { signOAuth1 } from './oauth1-sign.js';

/** The app's consumer credentials: the service's client id, and its secret (HMAC-SHA1) or PEM private key (RSA-SHA1). */
export type Consumer = Pick<OAuth1Credential, 'consumerKey' | 'consumerSecret' | 'signatureMethod'>;

/** What the temporary-credentials step yields (RFC 5849 §2.1); sealed in the authorization session. */
export interface RequestToken {
  token: string;
  tokenSecret: string;
}

/**
 * OAuth 1.0a step 1 (RFC 5849 §2.1): temporary credentials for this callback URL. The provider
 * must confirm the callback (`oauth_callback_confirmed=true`, §2.1), which 1.0a requires.
 */
export async function requestToken(provider: Provider, consumer: Consumer, callback: string, timeoutMs: number): Promise<RequestToken> {
  const url = provider.oauth1!.requestTokenUrl;
  const body = await post(provider, url, signOAuth1(consumer, 'POST', url, { oauth_callback: callback }), timeoutMs, 'server_error');
  const token = body.get('oauth_token');
  const tokenSecret = body.get('oauth_token_secret');
  if (!token || tokenSecret === null || body.get('oauth_callback_confirmed') !== 'true') {
    throw new AuthorizationFailed(
      'server_error',
      `Provider "${provider.id}" answered the request-token step without a confirmed token (RFC 5849 §2.1).`,
    );
  }
  return { token, tokenSecret };
}

/**
 * Step 2 (§2.2): where the user approves the request token. The catalog's authorizeParams, then
 * the service's params over them (Trello's scope, expiration, name); oauth_token last, so neither can replace it.
 */
export function authorizationUrl(provider: Provider, requestToken: RequestToken, params: Record<string, string> = {}): string {
  const url = new URL(provider.oauth1!.authorizeUrl);
  for (const [k, v] of Object.entries({ ...provider.oauth1!.authorizeParams, ...params })) url.searchParams.set(k, v);
  url.searchParams.set('oauth_token', requestToken.token);
  return url.href;
}

/**
 * Step 3 (§2.3): the callback's verifier and the request token buy the token credentials. The
 * callback's `oauth_token` must be the one this session asked for. A user who declined arrives
 * without a verifier (Twitter/X sends `denied`): that is `access_denied`.
 */
export async function accessToken(
  provider: Provider,
  consumer: Consumer,
  requestToken: RequestToken,
  callback: URLSearchParams,
  timeoutMs: number,
): Promise<TokenSet> {
  const verifier = callback.get('oauth_verifier');
  if (callback.has('denied') || !verifier) {
    throw new AuthorizationFailed('access_denied', `The user did not authorize the application at provider "${provider.id}".`);
  }
  if (callback.get('oauth_token') !== requestToken.token) {
    throw new AuthorizationFailed(
      'invalid_request',
      "The callback's oauth_token is not the request token of this authorization (RFC 5849 §2.2).",
    );
  }
  const url = provider.oauth1!.accessTokenUrl;
  const header = signOAuth1({ ...consumer, ...requestToken }, 'POST', url, { oauth_verifier: verifier });
  const body = await post(provider, url, header, timeoutMs, 'access_denied');
  const token = body.get('oauth_token');
  const tokenSecret = body.get('oauth_token_secret');
  if (!token || tokenSecret === null) {
    throw new AuthorizationFailed(
      'server_error',
      `Provider "${provider.id}" answered the access-token step without token credentials (RFC 5849 §2.3).`,
    );
  }
  body.delete('oauth_token');
  body.delete('oauth_token_secret');
  const credential: OAuth1Credential = { type: 'oauth1', ...consumer, token, tokenSecret };
  // Token credentials do not expire in OAuth 1.0a; extras (user_id, screen_name) stay in native.
  return { accessToken: '', tokenType: 'oauth1', expiresAt: null, native: Object.fromEntries(body), kind: 'oauth1', credential };
}

/**
 * The account behind token credentials: the provider's declared test request, signed with them
 * (Trello's /1/members/me), else what the access-token response carried (X's user_id), else nothing.
 */
export async function readOAuth1Profile(
  ctx: ClientContext,
  tokens: TokenSet,
  variables: Record<string, string>,
  agents: ApiAgents,
): Promise<Profile> {
  if (ctx.provider.test) {
    const options = { agent: testAgent(agents, ctx.provider, variables, {}), timeoutMs: ctx.timeoutMs };
    return testCredential(resolveApiUrls(ctx.provider, variables), tokens.credential!, {}, options);
  }
  return ctx.provider.profile?.source === 'token_response' ? readProfile(ctx, tokens, undefined) : {};
}

/** Token credentials the app already holds (moving in); checked by the caller with the provider's test request. */
export function importedToken(
  provider: Provider,
  consumer: Consumer,
  token: string | undefined,
  tokenSecret: string | undefined,
): TokenSet {
  if (!token || tokenSecret === undefined) {
    throw new InvalidInput('Importing an OAuth 1.0a identity needs tokens.accessToken (the oauth_token) and tokens.tokenSecret.', 'tokens');
  }
  if (!provider.test) {
    throw new InvalidInput(
      `Provider "${provider.id}" declares no test request to check OAuth 1.0a tokens with; they cannot be imported.`,
      'tokens',
    );
  }
  const credential: OAuth1Credential = { type: 'oauth1', ...consumer, token, tokenSecret };
  return { accessToken: '', tokenType: 'oauth1', expiresAt: null, native: {}, kind: 'oauth1', credential };
}

async function post(provider: Provider, url: string, authorization: string, timeoutMs: number, refusal: string): Promise<URLSearchParams> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { authorization }, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    throw new AuthorizationFailed('temporarily_unavailable', `Provider "${provider.id}" could not be reached: ${(err as Error).message}.`);
  }
  const text = (await response.text()).slice(0, 4096);
  if (!response.ok) {
    const error = response.status >= 500 ? 'temporarily_unavailable' : refusal;
    throw new AuthorizationFailed(
      error,
      `Provider "${provider.id}" refused the OAuth 1.0a request (HTTP ${response.status}): ${text.slice(0, 300) || 'no detail'}.`,
    );
  }
  return new URLSearchParams(text);
}
